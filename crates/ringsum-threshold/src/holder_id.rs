//! The id of a key holder.

use std::fmt;

/// A key holder's id, which is also its Shamir evaluation point x: nonzero
/// and below the share field's prime p ([`crate::shamir::ShareCommittee`]
/// checks both), so that the points of distinct holders differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HolderId(pub u32);

impl fmt::Display for HolderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "holder {}", self.0)
    }
}
