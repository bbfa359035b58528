"""A small shop whose tests use pytest-conveyor the way its README tells users to."""
