"""Running many districts through a school year: alerts to people, each district's status, approvals."""
