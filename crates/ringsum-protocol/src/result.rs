//! The published result of a round: the payload of a
//! [`ringsum_pq::MessageKind::RoundResult`] envelope (docs/formats.md,
//! "Protocol payloads"): big-endian integers, the model's length checked
//! against a limit before anything is allocated.

use ringsum_pq::codec::Reader;

use crate::error::Result;

/// A published round result: the round, the number of submissions, the
/// weight sum, the quantization bound, and the new global model (f32).
#[derive(Clone, Debug, PartialEq)]
pub struct RoundResult {
    /// The round.
    pub round: u64,
    /// Submissions summed.
    pub clients: u64,
    /// Sum of the quantized weights.
    pub weight_sum: i64,
    /// Bound on the quantization error of the average.
    pub error_bound: f64,
    /// The new global model, flattened in layout order.
    pub model: Vec<f32>,
}

impl RoundResult {
    /// The encoding.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.round.to_be_bytes().to_vec();
        out.extend_from_slice(&self.clients.to_be_bytes());
        out.extend_from_slice(&self.weight_sum.to_be_bytes());
        out.extend_from_slice(&self.error_bound.to_be_bytes());
        let count = u32::try_from(self.model.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for v in &self.model {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out
    }

    /// Decodes a result of at most `max_params` parameters.
    ///
    /// # Errors
    /// [`crate::ProtocolError::Pq`] for a malformed payload.
    pub fn decode(bytes: &[u8], max_params: usize) -> Result<Self> {
        let mut reader = Reader::new(bytes, "round result");
        let round = reader.u64("round")?;
        let clients = reader.u64("clients")?;
        let weight_sum = i64::from_be_bytes(reader.array("weight sum")?);
        let error_bound = f64::from_be_bytes(reader.array("error bound")?);
        let count = reader.length("model length", max_params)?;
        let model = (0..count)
            .map(|_| Ok(f32::from_be_bytes(reader.array("parameter")?)))
            .collect::<Result<Vec<_>>>()?;
        reader.finish()?;
        Ok(Self {
            round,
            clients,
            weight_sum,
            error_bound,
            model,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ProtocolError;

    fn result() -> RoundResult {
        RoundResult {
            round: 3,
            clients: 7,
            weight_sum: -12,
            error_bound: 1.5e-4,
            model: vec![0.5, -0.25, f32::MIN_POSITIVE, 3.0],
        }
    }

    #[test]
    fn results_round_trip_in_their_documented_layout() {
        let r = result();
        let bytes = r.encode();
        // round, clients, weight sum, error bound, count, then the model.
        assert_eq!(bytes.len(), 8 + 8 + 8 + 8 + 4 + 4 * 4);
        assert_eq!(&bytes[..8], &3u64.to_be_bytes());
        assert_eq!(&bytes[16..24], &(-12i64).to_be_bytes());
        assert_eq!(&bytes[32..36], &4u32.to_be_bytes());
        assert_eq!(&bytes[36..40], &0.5f32.to_be_bytes());
        assert_eq!(RoundResult::decode(&bytes, 4).unwrap(), r);
        let empty = RoundResult {
            model: Vec::new(),
            ..r
        };
        assert_eq!(RoundResult::decode(&empty.encode(), 0).unwrap(), empty);
    }

    #[test]
    fn malformed_results_are_refused() {
        let bytes = result().encode();
        // Too many parameters for the receiver's model.
        assert!(matches!(
            RoundResult::decode(&bytes, 3),
            Err(ProtocolError::Pq(_))
        ));
        // Every truncation, and a trailing byte.
        for cut in 0..bytes.len() {
            assert!(RoundResult::decode(&bytes[..cut], 4).is_err(), "{cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(RoundResult::decode(&longer, 4).is_err());
        // A count that promises more than the bytes hold.
        let mut lying = bytes;
        lying[35] = 5;
        assert!(RoundResult::decode(&lying, 1 << 16).is_err());
    }
}
