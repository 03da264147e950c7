Feature: Supervise and assess (监督考核)
  Every figure comes from the record of the cases: rates after a week equal
  what a person computes by hand, each street sees only its own scorecard, a
  burst of reports raises an early warning, a dissatisfied resident gets a
  return visit that can reopen the case, and a disputed call goes to the
  standing responsibility meeting, whose ruling amends the responsibility list.

  Background:
    Given the reference pack of Gulou district is active

  Scenario: Rates after a scripted week equal hand-computed values
    Given it is 09:00 on Monday 14 September 2026 in Fuzhou
    And on Monday a manhole case in Dongjie is signed, handled, approved and rated 5
    And on Tuesday a manhole case in Dongjie is signed, handled, approved and rated 2
    And cc.supervisor visits the resident, who rates 3, and closes the matter
    And on Wednesday a manhole case in Dongjie is signed, handled, approved and rated 1
    And cc.supervisor visits the resident, who rates 2, and reopens the case
    And dongjie.dispatcher handles it again, approves it and the resident rates 4
    And on Thursday a manhole case in Dongjie is reported and never signed for
    When 15 minutes pass
    And the clock reaches 18:00 on Friday 18 September 2026
    Then the street figures of "gulou.dongjie" for the week are
      | rate                      | value |
      | completion_rate           | 0.75  |
      | reopen_rate               | 0.3333 |
      | call_rate                 | 0     |
      | satisfaction              | 3     |
      | bj_satisfaction_rate      | 0.5   |
      | bj_resolution_rate        | 0.5   |
      | bj_response_rate          | 1     |
      | return_visit_satisfaction | 2.5   |
      | overdue_count             | 1     |
      | escalated_count           | 2     |
    And the rates equal a full recomputation from the record

  Scenario: A street cannot read another street's scorecard detail
    Given it is 10:00 on Monday 28 September 2026 in Fuzhou
    And citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    Then dongjie.dispatcher may read the scorecard of "gulou.dongjie"
    And guxi.dispatcher may not read the scorecard of "gulou.dongjie"
    And guxi.dispatcher sees only the rates of "gulou.guxi"
    And cc.supervisor may read the scorecard of "gulou.dongjie"

  Scenario: A burst of waterlogging reports in one street raises a warning
    Given it is 09:00 on Monday 7 September 2026 in Fuzhou
    And a quiet month with one waterlogging report a week in Dongjie
    When 7 waterlogging reports arrive in Dongjie within three hours
    And cc.supervisor scans for early warnings
    Then one "burst" warning names "gulou.dongjie" and "water.waterlogging" with 7 cases
    And a second scan raises no new "burst" warning

  Scenario: A dissatisfied citizen gets a return visit that reopens the case
    Given it is 10:00 on Monday 28 September 2026 in Fuzhou
    And citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    And dongjie.dispatcher has signed for it and handled it with "已补装井盖"
    When dongjie.dispatcher completes "review" approving it
    And citizen.zhang completes "evaluate" with satisfaction 2
    Then cc.supervisor has a "return_visit" task for the case
    And the "return_visit" task is due at 10:00 on Wednesday 30 September 2026
    When cc.supervisor completes the return visit rating 1 and choosing "reopen"
    Then the case is "handling" and owned by "gulou.dongjie"
    And dongjie.dispatcher has a "handle" task for the case
    And the return visit's rating 1 of "gulou.dongjie" is on the record
    And the timeline shows rating.given, task.completed, rating.given, case.reopened, case.stage in order
    When dongjie.dispatcher completes "handle" with result "重新补装并加固"
    And dongjie.dispatcher completes "review" approving it
    And citizen.zhang completes "evaluate" with satisfaction 5
    Then the case is "evaluated" and closed
    And the street figures of "gulou.dongjie" for today are
      | rate                      | value |
      | reopen_rate               | 1     |
      | return_visit_satisfaction | 1     |
      | satisfaction              | 3.5   |

  Scenario: A disputed call reaches the standing meeting and its ruling changes the responsibility list
    Given it is 10:00 on Monday 28 September 2026 in Fuzhou
    And citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    And dongjie.dispatcher has signed for it
    When dongjie.dispatcher calls "gulou.cgj" out to the scene
    And cgj.handler rejects the call because "井盖属燃气管道检查井，应由燃气公司处置"
    Then dongjie.dispatcher has a "answer_rejection" task for the case
    And the call of "gulou.rqgs" by dongjie.dispatcher is refused by the responsibility list
    When dongjie.dispatcher maintains the call
    Then cc.supervisor has a "rule_dispute" task for the case
    When cc.supervisor rules "refer" on the disputed call
    Then meeting.secretary has a "rule_responsibility" task for the case
    When meeting.secretary rules that "gulou.rqgs" has main responsibility
    Then the active reference pack is version "1.0.1", deployed by meeting.secretary and naming the case
    And its responsibility list names "gulou.rqgs" as main for "road.manhole_cover" with "gulou.cgj" cooperating
    And the case runs on version "1.0.1" and its record shows the amendment
    And dongjie.dispatcher has a "handle" task for the case
    When dongjie.dispatcher calls "gulou.rqgs" out to the scene
    Then rqgs.handler has a "report_in" task for the case

  Scenario: The command centre upholds a disputed call and the department must report in
    Given it is 10:00 on Monday 28 September 2026 in Fuzhou
    And citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    And dongjie.dispatcher has signed for it
    When dongjie.dispatcher calls "gulou.cgj" out to the scene
    And cgj.handler rejects the call because "不属于本部门职责"
    And dongjie.dispatcher maintains the call
    And cc.supervisor rules "uphold" on the disputed call
    Then cgj.handler has a "report_in" task for the case
    And the timeline shows callout.rejected, task.completed, callout.upheld in order
    And the rates of "gulou.cgj" today count 2 call-outs and 1 rejection

  Scenario: A supervision the command centre lets lapse goes to the city, which decides in its place
    Given it is 10:00 on Monday 28 September 2026 in Fuzhou
    And citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    When 11 minutes pass
    Then cc.supervisor has a "supervise" task for the case
    When the clock reaches 11:15 on Monday 28 September 2026
    Then the case has been escalated to "gulou.city" by a "deadline.escalated" for "supervise"
    And city.supervisor has a "city_supervise" task for the case
    And cc.supervisor has no open task for the case
    And the scorecard of "gulou.city" lists the case among its worst cases once it is overdue on Tuesday
    When city.supervisor decides as the city that "gulou.dongjie" must sign
    Then dongjie.dispatcher has a "sign_for" task for the case
    And the timeline shows deadline.overdue, task.opened, deadline.escalated, task.cancelled, task.opened, task.completed in order
    And city.supervisor's own figures for the week are
      | rate                        | value |
      | escalations_received_count  | 1     |
      | on_time_rate:city_supervise | 0     |
    And the street figures of "gulou.cc" for the week are
      | rate                       | value |
      | escalations_received_count | 1     |
    And the rates equal a full recomputation from the record

  Scenario: A disputed call the command centre does not rule in time is ruled by the city
    Given it is 10:00 on Monday 28 September 2026 in Fuzhou
    And citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    And dongjie.dispatcher has signed for it
    When dongjie.dispatcher calls "gulou.cgj" out to the scene
    And cgj.handler rejects the call because "不属于本部门职责"
    And dongjie.dispatcher maintains the call
    Then cc.supervisor has a "rule_dispute" task for the case
    When the clock reaches 10:30 on Tuesday 29 September 2026
    Then city.supervisor has a "city_rule_dispute" task for the case
    And cc.supervisor has no open task for the case
    When city.supervisor rules "uphold" on the disputed call as the city
    Then cgj.handler has a "report_in" task for the case
    And the rates equal a full recomputation from the record

  Scenario: A return visit the command centre lets lapse stays with it while the city supervises it
    Given it is 10:00 on Monday 28 September 2026 in Fuzhou
    And citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    And dongjie.dispatcher has signed for it and handled it with "已补装井盖"
    When dongjie.dispatcher completes "review" approving it
    And citizen.zhang completes "evaluate" with satisfaction 2
    Then cc.supervisor has a "return_visit" task for the case
    When the clock reaches 10:30 on Wednesday 30 September 2026
    Then the case has been escalated to "gulou.city" by a "deadline.overdue" for "return_visit"
    And city.supervisor has a "city_urge_return_visit" task for the case
    And cc.supervisor has a "return_visit" task for the case
    When city.supervisor instructs as the city "请指挥中心今日内完成回访"
    Then the city's instruction "请指挥中心今日内完成回访" on "city_urge_return_visit" is on the record
    And cc.supervisor has a "return_visit" task for the case
    When cc.supervisor completes the return visit rating 4 and choosing "close"
    Then the case is "evaluated" and closed
    And city.supervisor's own figures for the week are
      | rate                               | value |
      | escalations_received_count         | 1     |
      | on_time_rate:city_urge_return_visit | 1     |
    And the rates equal a full recomputation from the record

  Scenario: A ruling the standing meeting lets lapse stays with it; its ruling closes the city's supervision
    Given it is 10:00 on Monday 28 September 2026 in Fuzhou
    And citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    And dongjie.dispatcher has signed for it
    When dongjie.dispatcher calls "gulou.cgj" out to the scene
    And cgj.handler rejects the call because "井盖属燃气管道检查井，应由燃气公司处置"
    And dongjie.dispatcher maintains the call
    And cc.supervisor rules "refer" on the disputed call
    Then meeting.secretary has a "rule_responsibility" task for the case
    When the clock reaches 10:30 on Monday 19 October 2026
    Then the case has been escalated to "gulou.city" by a "deadline.overdue" for "rule_responsibility"
    And city.supervisor has a "city_urge_ruling" task for the case
    And meeting.secretary has a "rule_responsibility" task for the case
    When meeting.secretary rules that "gulou.rqgs" has main responsibility
    Then city.supervisor has no open task for the case
    And the city's "city_urge_ruling" task is cancelled on the record after the ruling
    And dongjie.dispatcher has a "handle" task for the case
    And city.supervisor's own figures for the week are
      | rate                       | value |
      | escalations_received_count | 1     |
    And the rates equal a full recomputation from the record
