Feature: Integrators: Open311 GeoReport v2, a change feed, and webhooks that never lose an event
  Existing civic apps speak Open311 GeoReport v2 and file requests without changes; other systems
  follow what happens to cases through the change feed and through signed webhooks, delivered at
  least once and in per-case order even when a worker dies mid-delivery.

  Background:
    Given a govflow server with the reference pack and the demo principals

  Scenario: An Open311 client files a request that a street then signs for
    When an Open311 client lists the services of jurisdiction "gulou"
    Then "road.manhole_cover" is offered with a form of attributes
    When the client files a "road.manhole_cover" request at 26.0865, 119.3025 with the hotline's api_key
    Then the client gets a service request id
    And the client sees the request "open" as "分发 dispatched to the street"
    When dongjie.dispatcher signs for the request
    Then the client sees the request "open" as "处置 being handled"
    And no personal data of the reporter is in the client's answers

  Scenario: The change feed gives every event once, in commit order
    When the client files 3 "road.pothole" requests at 26.0865, 119.3025 with the hotline's api_key
    And the hotline reads the change feed two events at a time
    Then it has read every event of the record once, in commit order, without personal data

  Scenario: A webhook receiver gets the events signed and in order, even after a worker is killed
    Given the hotline has registered a webhook to a receiver
    When the client files 8 "road.manhole_cover" requests at 26.0865, 119.3025 with the hotline's api_key
    And a worker starts delivering and is killed mid-delivery
    And another worker takes over
    Then the receiver has every event of the feed at least once
    And every delivery is signed with the webhook's secret
    And each case's events arrived in order
