//! The coordinator's recorded inputs: every message that reached the
//! protocol and every decision the service took, in the form the store
//! keeps them (docs/formats.md, "The coordinator's store").

use crate::error::{NetError, Result};

/// An input to the coordinator, as recorded in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Open the next round.
    Open,
    /// A client's submission
    /// ([`ringsum_protocol::client::Submission::to_bytes`]).
    Submission(Vec<u8>),
    /// Close collection: sign the set of the accepted clients.
    Close,
    /// A holder's signed answer.
    Answer(Vec<u8>),
    /// Combine the answers and end the round.
    Finish,
    /// End the open round without a result, for this reason.
    Abandon(String),
}

const OPEN: u8 = 1;
const SUBMISSION: u8 = 2;
const CLOSE: u8 = 3;
const ANSWER: u8 = 4;
const FINISH: u8 = 5;
const ABANDON: u8 = 6;

impl Event {
    /// The recorded form: a tag byte, then the message's bytes or the
    /// reason (UTF-8); nothing for the decisions without a body.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let with = |tag: u8, body: &[u8]| {
            let mut out = Vec::with_capacity(1 + body.len());
            out.push(tag);
            out.extend_from_slice(body);
            out
        };
        match self {
            Self::Open => vec![OPEN],
            Self::Submission(b) => with(SUBMISSION, b),
            Self::Close => vec![CLOSE],
            Self::Answer(b) => with(ANSWER, b),
            Self::Finish => vec![FINISH],
            Self::Abandon(reason) => with(ABANDON, reason.as_bytes()),
        }
    }

    /// Reads a recorded event (`seq` names it in errors).
    ///
    /// # Errors
    /// [`NetError::MalformedEvent`] for an unknown tag or a malformed body.
    pub fn decode(seq: u64, bytes: &[u8]) -> Result<Self> {
        let bad = |reason| NetError::MalformedEvent { seq, reason };
        let (tag, body) = bytes.split_first().ok_or_else(|| bad("empty"))?;
        let empty = |event: Self| {
            if body.is_empty() {
                Ok(event)
            } else {
                Err(bad("a decision with a body"))
            }
        };
        match *tag {
            OPEN => empty(Self::Open),
            SUBMISSION => Ok(Self::Submission(body.to_vec())),
            CLOSE => empty(Self::Close),
            ANSWER => Ok(Self::Answer(body.to_vec())),
            FINISH => empty(Self::Finish),
            ABANDON => String::from_utf8(body.to_vec())
                .map(Self::Abandon)
                .map_err(|_| bad("a reason that is not UTF-8")),
            _ => Err(bad("unknown tag")),
        }
    }

    /// A short name for logs.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Open => "round opened",
            Self::Submission(_) => "submission",
            Self::Close => "set closed and sent to the holders",
            Self::Answer(_) => "holder answer",
            Self::Finish => "round finished",
            Self::Abandon(_) => "round abandoned",
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn events_decode_canonically() {
        for event in [
            Event::Open,
            Event::Submission(vec![1, 2, 3]),
            Event::Close,
            Event::Answer(vec![]),
            Event::Finish,
            Event::Abandon("only 1 of 3 submissions".into()),
        ] {
            let bytes = event.encode();
            assert_eq!(Event::decode(0, &bytes).unwrap(), event);
        }
        assert!(Event::decode(4, &[]).is_err());
        assert!(Event::decode(4, &[9]).is_err());
        assert!(Event::decode(4, &[OPEN, 0]).is_err());
        assert!(Event::decode(4, &[ABANDON, 0xff]).is_err());
    }
}
