//! Integration tests live in `tests/`; helpers in `tests/tests/common`.
