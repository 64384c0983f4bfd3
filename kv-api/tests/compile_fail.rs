//! A typed slot fixes its key and value types: a wrong one does not compile.

#[test]
fn typed_slots_reject_wrong_types() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
