//! pinlat-agent: placeholder until the agent issue lands.
fn main() {
    println!("pinlat-agent {}", env!("CARGO_PKG_VERSION"));
}
