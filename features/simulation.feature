Feature: Policy simulation (政策模拟)
  Policy staff change deadlines, staffing and routing, and today they learn the effect only
  after deploying it on real residents. `govflow simulate` runs a pack version through the
  real engine (dispatch, Casbin, the diagram, deadlines, timers, escalations, call-outs) on a
  simulated clock against a throw-away database, and compares two versions on the same
  simulated reports and people (common random numbers).

  Background:
    Given a small scenario: one day of 20 road reports in Dongjie street, one person on duty to sign for them

  Scenario: A shorter sign-for limit shows more escalations
    Given a version of the reference pack whose sign-for limit is 2 minutes instead of 10
    When the policy officer compares it with the reference pack over 3 replications
    Then the new version has more escalations, the 95% interval of the difference above zero

  Scenario: An extra person at a street shortens its queue
    Given the scenario's Dongjie street has 1 person for its daytime work
    And a version whose scenario gives Dongjie street 2 people
    When the policy officer compares the two versions
    Then Dongjie street's queue is shorter in the version with 2 people

  Scenario: Two runs with the same seed are identical
    When the policy officer simulates the reference pack twice with seed 11
    Then both runs print the same table and write the same HTML report, byte for byte
    And the table shows the supervision rates, the steps on time and late, the escalations and the queues

  Scenario: A bad scenario is refused before anything runs
    When the policy officer simulates with a scenario naming the unit "gulou.nowhere" and 3650 days
    Then the command is refused in one line naming the scenario
    And each issue names the file, the line and the key
