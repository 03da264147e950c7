Feature: Process packs and plugins: each district runs its own process without forking (流程包与插件)
  A district deploys a pack that extends the reference pack and overrides only what differs;
  versions are validated before activation, running cases finish on the version they started
  on, a district's own plugin acts for its district only, and a version can be rolled back.

  Background:
    Given the reference pack of Gulou district is active

  Scenario: Deploy a district pack and run a case through it
    When the operator deploys the example pack "cangshan" with "govflow pack deploy"
    Then "cangshan 1.0.0" is the active pack of district "cangshan"
    And the effective pack "cangshan 1.0.0" has "processes/frontline_disposal.bpmn" from its base "reference 1.0.0"
    When citizen.zhang reports "仓前路上有个大坑，车子开过去很危险" in "cangshan" at 26.0450, 119.3100
    Then the case runs on "cangshan 1.0.0" and is owned by "cangshan.cangqian" as "road.pothole"
    And cangqian.dispatcher has a "community_precheck" task for the case
    When cangqian.dispatcher completes "community_precheck" with finding "现场核实：坑深约十厘米"
    And cangqian.dispatcher completes "sign_for"
    And cangqian.dispatcher completes "handle" with result "已修补路面"
    And cangqian.dispatcher completes "review" approving it
    And citizen.zhang completes "evaluate" with satisfaction 5
    Then cangshan.cc.supervisor sees the case "evaluated" and closed

  Scenario: An invalid pack is refused with the exact error
    When district.supervisor uploads Gulou version "1.1.0" whose responsibility list removes the entries of "utility.*"
    Then the upload is refused with 422
    And the refusal names "policies/responsibility.yaml" and the element "utility.gas_leak"
    And the refusal says "matter utility.gas_leak of catalog.yaml has no responsibility entry (add utility.gas_leak or utility.*)"
    And "reference 1.0.0" is the active pack of district "gulou"

  Scenario: A new version leaves running cases on the old one
    Given citizen.zhang has reported "东街口有个井盖没了，晚上很危险" at 26.0865, 119.3025
    When district.supervisor uploads Gulou version "1.1.0" with a sign-for limit of 15 minutes
    Then "reference 1.1.0" is the active pack of district "gulou"
    And the case runs on "reference 1.0.0" and is owned by "gulou.dongjie" as "road.manhole_cover"
    When dongjie.dispatcher completes "sign_for"
    Then the case runs on "reference 1.0.0" and is owned by "gulou.dongjie" as "road.manhole_cover"
    When citizen.li reports "南街这边路灯不亮了好几天" at 26.0780, 119.2950
    Then the case runs on "reference 1.1.0" and is owned by "gulou.nanjie" as "lighting.streetlight_out"

  Scenario: A custom plugin changes routing for its district only
    Given the operator has deployed the example pack "taijiang" with "govflow pack deploy"
    When citizen.zhang reports "上下杭这边路面有个大坑" in "taijiang" at 26.0620, 119.3020
    Then the case runs on "taijiang 1.0.0" and is owned by "taijiang.sxh" as "road.pothole"
    And the routing on the record says "owner taijiang.sxh decided by plugin zone_routing"
    When citizen.zhang reports "台江路上有个大坑" in "taijiang" at 26.0620, 119.3120
    Then the case runs on "taijiang 1.0.0" and is owned by "taijiang.shanghai" as "road.pothole"
    When citizen.li reports "东街口路面有个大坑" in "gulou" at 26.0865, 119.3025
    Then the case runs on "reference 1.0.0" and is owned by "gulou.dongjie" as "road.pothole"
    And the plugin "zone_routing" does not act for "reference 1.0.0"

  Scenario: A rollback makes the previous version active again
    Given district.supervisor has uploaded Gulou version "1.1.0" with a sign-for limit of 15 minutes
    When district.supervisor rolls back district "gulou"
    Then "reference 1.0.0" is the active pack of district "gulou"
    When citizen.li reports "南街这边路灯不亮了好几天" at 26.0780, 119.2950
    Then the case runs on "reference 1.0.0" and is owned by "gulou.nanjie" as "lighting.streetlight_out"
