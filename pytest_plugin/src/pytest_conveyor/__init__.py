"""pytest-conveyor: fixtures, exact settling and readable assertions for Conveyor message flows."""
