Feature: Hardening: nothing a pack, a request or a principal change does can hang, crash, leak or lie (安全加固)
  Hostile inputs at every door are refused precisely and change nothing: packs that would expand
  or reach outside their folder, text the databases would store differently, grants that a
  running server would keep after they were taken away. Each scenario runs against the real API,
  CLI and database, on SQLite and on PostgreSQL.

  Background:
    Given the reference pack of Gulou district is active

  Scenario: A YAML bomb pack is refused
    When district.supervisor uploads Gulou version "1.1.0" whose pack.yaml nests aliases nine levels deep
    Then the upload is refused with 422 naming "pack.yaml" at the line of the first anchor
    And "reference 1.1.0" is not deployed
    And "reference 1.0.0" is still the active pack of district "gulou"

  Scenario: A symlinked file is refused
    Given a copy of the reference pack whose "processes/leak.bpmn" is a symbolic link to a file outside it
    When the operator deploys it with "govflow pack deploy"
    Then the command fails naming "processes/leak.bpmn" as a symbolic link
    And nothing of the linked file was stored

  Scenario: A demoted supervisor is refused on the next request
    Given citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    And district.supervisor can read the case with the reporter's name and phone
    When "govflow principals load" makes district.supervisor a citizen
    Then district.supervisor's next request for the case is answered as if it did not exist
    And district.supervisor may no longer read the district's packs

  Scenario: A NUL in a description gets a clear 422
    When citizen.zhang reports a description holding a NUL character
    Then the report is refused with 422 naming the field "description"
    And no case was stored

  Scenario: A diagram with unbounded arithmetic is refused or stopped with an incident while another case proceeds
    Given citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    When district.supervisor uploads Gulou version "1.2.0" whose routing condition computes 10**10**10
    Then the upload is refused with 422 naming the routing condition's line and element
    When Gulou version "1.3.0" whose routing condition computes a huge power from the case's data is active
    And citizen.li reports "鼓东路路灯不亮" at 26.0865, 119.3025 on it
    Then the report is stopped with 409 naming the routing condition's element and nothing is stored
    When dongjie.dispatcher completes "sign_for"
    Then the case is "handling" and owned by "gulou.dongjie"

  Scenario: A corrupt case among due timers does not stop the others
    Given 5 cases reported at 26.0865, 119.3025 waiting to be signed for
    And the second case's stored state is garbage and the fourth's no longer restores
    When 11 minutes pass
    Then every other case's reminder fired exactly once
    And district.supervisor lists 2 open incidents naming those cases
    And the broken cases kept their last good state

  Scenario: A restart keeps the version an operator activated
    When district.supervisor deploys and activates Gulou version "1.1.0" through the API
    And "govflow serve" restarts on the same database with the reference pack folder
    Then the server says "gulou runs reference 1.1.0 (active version kept)"
    And the restarted server runs "reference 1.1.0" for district "gulou"
