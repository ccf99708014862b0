//! The `ringway` binary: the whole program lives in the library
//! (`src/lib.rs`); this file only picks the allocator and calls it.

/// mimalloc is the safety net, not the plan: the data path allocates from
/// pools sized at start-up (DESIGN §1).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    ringway::main()
}
