Feature: Call-out, report-in and joint consultation (呼叫·报到·会商)
  A street that cannot solve a case alone calls out the departments the
  responsibility list names; they report in, consult and dispose; everyone
  rates everyone. Powers are decided by Casbin, and every call is on the record.

  Background:
    Given the reference pack of Gulou district is active
    And it is 10:00 on Monday 28 September 2026 in Fuzhou
    And citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    And dongjie.dispatcher has signed for it

  Scenario: A lawful call-out with two departments reporting in and consulting
    When dongjie.dispatcher calls out "gulou.cgj, gulou.zjj" to meet at "东街口" at 15:00
    Then the call-out is accepted
    And the case is "called"
    And cgj.handler has a "report_in" task for the case
    And zjj.handler has a "report_in" task for the case
    And the call of "gulou.cgj" was allowed by "responsibility list road.manhole_cover: main"
    And the call of "gulou.zjj" was allowed by "responsibility list road.manhole_cover: cooperating"
    When cgj.handler reports in
    And zjj.handler reports in
    Then the case is "consulting"
    When dongjie.dispatcher records the consultation "城管局补装井盖，住建局核查管线" assigning "gulou.cgj"
    Then cgj.handler has a "dispose" task for the case
    When zjj.handler adds its part "已核查井下管线，无破损"
    And cgj.handler completes "dispose" with result "已补装防坠井盖"
    Then the case is "completed"
    When dongjie.dispatcher completes "review" approving it
    Then the case is "reviewed"
    And the timeline shows callout.made, task.completed, case.stage, callout.contribution in order

  Scenario: A call-out to a department not on the list is refused
    When dongjie.dispatcher calls out "gulou.hbj" to meet at "东街口" at 15:00
    Then the request is refused with 403
    And the refusal says "gulou.hbj is neither main nor cooperating for road.manhole_cover"
    And the case is "handling"

  Scenario: A delegated call-out works until its expiry and is refused after
    When district.supervisor delegates "gulou.hbj" to "gulou.dongjie" for "road.*" until 12:00 on Monday 28 September 2026
    And dongjie.dispatcher calls out "gulou.hbj" to meet at "东街口" at 11:00
    Then the call-out is accepted
    And the call of "gulou.hbj" was allowed by "delegation"
    And the delegation is on the record
    Given citizen.li has reported "东街另一处井盖松动了" at 26.0866, 119.3026
    And dongjie.dispatcher has signed for it
    When the clock reaches 12:01 on Monday 28 September 2026
    And dongjie.dispatcher calls out "gulou.hbj" to meet at "东街口" at 15:00
    Then the request is refused with 403
    And the refusal says "expired"

  Scenario: A department that never reports in is escalated
    When dongjie.dispatcher calls out "gulou.cgj, gulou.zjj" to meet at "东街口" at 11:00
    And cgj.handler reports in
    And the clock reaches 12:01 on Monday 28 September 2026
    Then "gulou.zjj" is recorded as not responding and escalated to "gulou.cc"
    And zjj.handler has a "report_in" task for the case

  Scenario: A department rejects a wrong call and the case returns to the street
    When dongjie.dispatcher calls out "gulou.cgj, gulou.zjj" to meet at "东街口" at 15:00
    And zjj.handler rejects the call because "井盖属城管管养，与管线无关"
    Then the case is "handling"
    And dongjie.dispatcher has a "answer_rejection" task for the case
    And cgj.handler has no open task for the case
    And a "callout.rejected" is on the timeline and the command centre was notified

  Scenario: The three-way evaluation
    When dongjie.dispatcher calls out "gulou.cgj" to meet at "东街口" at 15:00
    And cgj.handler reports in
    And dongjie.dispatcher records the consultation "城管局补装井盖" assigning "gulou.cgj"
    And cgj.handler completes "dispose" with result "已补装"
    And dongjie.dispatcher rates "gulou.cgj" 5 for "report_in"
    And dongjie.dispatcher rates "gulou.cgj" 4 for "disposal"
    And cgj.handler rates "gulou.dongjie" 5 for "accuracy"
    And dongjie.dispatcher completes "review" approving it
    And citizen.zhang completes "evaluate" with satisfaction 5
    Then the case is "evaluated" and closed
    And the case has ratings "street_to_department report_in 5, street_to_department disposal 4, department_to_street accuracy 5, citizen_to_case satisfaction 5"
    And a second rating of "gulou.cgj" for "disposal" by dongjie.dispatcher is refused with 409
    And a rating of 6 by cgj.handler is refused with 422
    And zjj.handler may not rate the case

  Scenario: A street of one district cannot call on behalf of another district
    Given the Taijiang district pack is deployed beside it
    When cangxia.dispatcher calls out "gulou.cgj" to meet at "东街口" at 15:00
    Then the request is refused with 404
    And the refusal says "no such case"
    And the case is "handling"
    And no "callout.made" is on the timeline
