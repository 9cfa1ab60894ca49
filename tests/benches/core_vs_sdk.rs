//! Benchmarks of the core against cloudevents-sdk (being written).
fn main() {}
