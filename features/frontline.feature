Feature: Front-line disposal of a resident's report (一线处置)
  A report goes in through the API, is dispatched to the street that owns the
  territory, signed for, handled, reviewed and rated, and every step is on the record.

  Background:
    Given the reference pack of Gulou district is active

  Scenario: The happy path from report to evaluation
    When citizen.zhang reports "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    Then the case is "dispatched" and owned by "gulou.dongjie" as "road.manhole_cover"
    And dongjie.dispatcher has a "sign_for" task for the case
    When dongjie.dispatcher completes "sign_for"
    And dongjie.dispatcher completes "handle" with result "已补装井盖并设置警示"
    Then the case is "completed"
    When dongjie.dispatcher completes "review" approving it
    Then the case is "reviewed"
    When citizen.zhang completes "evaluate" with satisfaction 5
    Then the case is "evaluated" and closed
    And the timeline shows case.reported, case.routed, task.completed, case.closed in order
    And every event names its actor and the power it acted under

  Scenario: The review sends a case back to handling
    Given citizen.li has reported "华大街道北大路路面塌陷一个大坑" at 26.1040, 119.2840
    And huada.dispatcher has signed for it and handled it with "已回填"
    When huada.dispatcher completes "review" sending it back with "回填不实，重新处理"
    Then the case is "handling"
    And huada.dispatcher has a "handle" task for the case
    When huada.dispatcher completes "handle" with result "已重新铺设沥青"
    And huada.dispatcher completes "review" approving it
    Then the case is "reviewed"

  Scenario: The reporter withdraws the case before completion
    Given citizen.zhang has reported "南街这边路灯不亮了好几天" at 26.0780, 119.2950
    When citizen.zhang withdraws the case because "已经修好了"
    Then the case is "withdrawn" and closed
    And nobody has an open task for the case

  Scenario: A case cannot be withdrawn once its result is submitted
    Given citizen.li has reported "华大街道北大路路面塌陷一个大坑" at 26.1040, 119.2840
    And huada.dispatcher has signed for it and handled it with "已回填"
    When citizen.li withdraws the case because "不用了"
    Then the request is refused with 409
    And the case is "completed"

  Scenario: A case with no routable location goes to the command centre
    When citizen.zhang reports "小区门口的井盖松动了" without a location
    Then the case is "reported" and owned by "gulou.cc"
    And cc.supervisor has a "dispatch" task for the case
    When cc.supervisor dispatches it to "gulou.nanjie"
    Then the case is "dispatched" and owned by "gulou.nanjie"
    And nanjie.dispatcher has a "sign_for" task for the case

  Scenario: A citizen cannot complete a street's task
    Given citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    When citizen.zhang tries to complete the "sign_for" task
    Then the request is refused with 403
    And the case is "dispatched"

  Scenario: A street cannot act on another street's case
    Given citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    When nanjie.dispatcher tries to complete the "sign_for" task
    Then the request is refused with 404
    And the case is "dispatched"
    And nanjie.dispatcher cannot read the case

  Scenario: A hostile diagram is refused at validation
    Given a copy of the reference pack whose diagram has a script task running "import os"
    When the pack is validated with "govflow pack validate"
    Then validation fails naming "processes/frontline_disposal.bpmn" and the element "hostile_script"
    And the message says "import statements are not allowed"
