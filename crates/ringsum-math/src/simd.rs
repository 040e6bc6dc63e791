//! Run-time SIMD dispatch for the element-wise loops.
//!
//! The crate is built for the baseline x86-64 target (SSE2), where 64-bit
//! compares and arithmetic shifts do not vectorise. [`vectorize`] runs a
//! closure compiled again for the best instruction set the CPU offers
//! (AVX2, AVX-512), chosen at run time by `pulp` through a safe interface;
//! the loops inside are ordinary Rust that the compiler vectorises. The
//! closure and everything it calls must be `#[inline(always)]` for the
//! wider instructions to reach the loop body.

/// Runs `op` compiled for the widest SIMD level this CPU supports.
#[inline(always)]
pub(crate) fn vectorize<R>(op: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(op)
}
