Feature: Deadlines, working days and escalation (两级兜底)
  Sign within minutes, dispose within the tier's limit, or the case escalates
  upward until someone solves it. Time here is the engine's injected clock:
  "11 minutes pass" moves it and lets the timer worker run.

  Background:
    Given the reference pack of Gulou district is active

  Scenario: A case not signed within 10 minutes escalates to the command centre
    Given it is 10:00 on Monday 28 September 2026 in Fuzhou
    And citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    Then the "sign_for" task is due at 10:10 on Monday 28 September 2026
    When 11 minutes pass
    Then the case has been escalated to "gulou.cc" as overdue
    And cc.supervisor has a "supervise" task for the case
    And dongjie.dispatcher has no open task for the case
    When cc.supervisor supervises it back to "gulou.dongjie"
    Then dongjie.dispatcher has a "sign_for" task for the case
    And the timeline shows case.reported, deadline.overdue, task.completed, task.opened in order

  Scenario: A case signed in time never escalates
    Given it is 10:00 on Monday 28 September 2026 in Fuzhou
    And citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    When 9 minutes pass
    And dongjie.dispatcher completes "sign_for"
    And 2 hours pass
    Then the case is "handling"
    And the case was never escalated

  Scenario: A reminder precedes a disposal deadline
    Given it is 10:00 on Monday 28 September 2026 in Fuzhou
    And citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    And dongjie.dispatcher has signed for it
    Then the "handle" task is due at 10:00 on Tuesday 29 September 2026
    # one working day is 6.5 office hours (08:30-12:00, 14:30-17:30); the reminder comes at 75% of it
    When the clock reaches 17:20 on Monday 28 September 2026
    Then no "deadline.reminder" is on the timeline
    When the clock reaches 17:25 on Monday 28 September 2026
    Then a "deadline.reminder" for "handle" is on the timeline and was notified
    And the case was never escalated
    When the clock reaches 10:01 on Tuesday 29 September 2026
    Then the case has been escalated to "gulou.cc" as overdue
    And dongjie.dispatcher has a "handle" task for the case

  Scenario: A deadline over the National Day holiday counts working days
    Given it is 10:00 on Wednesday 30 September 2026 in Fuzhou
    And citizen.li has reported "工地半夜施工吵得没法睡觉" as "env.noise_construction" at 26.0780, 119.2950
    And nanjie.dispatcher has signed for it
    Then the "handle" task is due at 10:00 on Saturday 10 October 2026
    When the clock reaches 18:00 on Friday 9 October 2026
    Then the case was never escalated
