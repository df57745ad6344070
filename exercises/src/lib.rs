//! Worked solutions of the workshop exercises (docs/exercises/). Each solution is a
//! small standalone program in `examples/`, run with
//! `cargo run -p exercises --example NAME`; this library is empty on purpose, so
//! that each program can be read on its own.
