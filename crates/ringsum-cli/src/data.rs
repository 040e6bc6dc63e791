//! Data sets: CSV loading (optionally gzip), a stratified train/test split,
//! feature standardisation, and non-identical splits across institutions.

use std::io::Read;
use std::path::Path;

/// The most classes a data set may have.
pub const MAX_CLASSES: usize = 1000;

/// A labelled data set: rows of features and integer class labels 0..k.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Features, one row per sample.
    pub features: Vec<Vec<f32>>,
    /// Labels in 0..classes.
    pub labels: Vec<usize>,
    /// Number of classes (largest label + 1).
    pub classes: usize,
}

impl Dataset {
    /// Rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Features per row.
    pub fn dim(&self) -> usize {
        self.features.first().map_or(0, Vec::len)
    }

    fn subset(&self, rows: &[usize]) -> Self {
        Self {
            features: rows
                .iter()
                .filter_map(|&r| self.features.get(r).cloned())
                .collect(),
            labels: rows
                .iter()
                .filter_map(|&r| self.labels.get(r).copied())
                .collect(),
            classes: self.classes,
        }
    }
}

/// A small deterministic generator for shuffles and initial weights
/// (SplitMix64): reproducible from `--seed`, not for secrets.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    #[allow(clippy::cast_precision_loss)]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    #[allow(clippy::cast_possible_truncation)]
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Shuffles in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Reads a CSV data set: numeric features, an integer class label in the
/// last column, optionally a first line `rows,features,name,...`; gzip when
/// the file name ends in `.gz`. Errors name the line and column.
pub fn load(path: &Path) -> Result<Dataset, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = String::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_string(&mut out)
            .map_err(|e| format!("{}: not a gzip text file: {e}", path.display()))?;
        out
    } else {
        String::from_utf8(raw).map_err(|_| format!("{}: not UTF-8 text", path.display()))?
    };
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses CSV text as [`load`] describes.
pub fn parse(text: &str) -> Result<Dataset, String> {
    let mut features = Vec::new();
    let mut labels = Vec::new();
    let mut width = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if index == 0 && is_shape_line(&cells) {
            continue;
        }
        let Some((label_cell, feature_cells)) = cells.split_last() else {
            continue;
        };
        if feature_cells.is_empty() {
            return Err(format!(
                "line {number}: needs at least one feature and a label"
            ));
        }
        if *width.get_or_insert(cells.len()) != cells.len() {
            return Err(format!(
                "line {number}: {} columns, earlier lines have {}",
                cells.len(),
                width.unwrap_or(0)
            ));
        }
        let row = feature_cells
            .iter()
            .enumerate()
            .map(|(column, cell)| {
                cell.parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        format!(
                            "line {number}, column {}: {cell:?} is not a number",
                            column + 1
                        )
                    })
            })
            .collect::<Result<Vec<f32>, String>>()?;
        let label = label_cell
            .parse::<f64>()
            .ok()
            .filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v < 1e6)
            .ok_or_else(|| {
                format!(
                    "line {number}, column {}: the label {label_cell:?} is not a class number 0, 1, 2, ...",
                    cells.len()
                )
            })?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        labels.push(label as usize);
        features.push(row);
    }
    if labels.is_empty() {
        return Err("no data rows".into());
    }
    // Class numbers need not be dense: map them to 0..k in order.
    let mut distinct = labels.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 2 {
        return Err("every row has the same class; there is nothing to learn".into());
    }
    if distinct.len() > MAX_CLASSES {
        return Err(format!(
            "{} distinct classes; the demo's models take at most {MAX_CLASSES}",
            distinct.len()
        ));
    }
    for label in &mut labels {
        *label = distinct.binary_search(label).unwrap_or(0);
    }
    let classes = distinct.len();
    Ok(Dataset {
        features,
        labels,
        classes,
    })
}

/// The optional first line: `rows,features,name,...` with two integers.
fn is_shape_line(cells: &[&str]) -> bool {
    cells.len() >= 2
        && cells.iter().take(2).all(|c| c.parse::<u64>().is_ok())
        && cells.iter().skip(2).any(|c| c.parse::<f64>().is_err())
}

/// A stratified split: about `test_fraction` of every class held out.
pub fn train_test_split(
    data: &Dataset,
    test_fraction: f64,
    rng: &mut SplitMix,
) -> (Dataset, Dataset) {
    let mut train = Vec::new();
    let mut test = Vec::new();
    for class in 0..data.classes {
        let mut rows: Vec<usize> = (0..data.len())
            .filter(|&r| data.labels.get(r) == Some(&class))
            .collect();
        rng.shuffle(&mut rows);
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let held = ((rows.len() as f64) * test_fraction).round() as usize;
        let (t, r) = rows.split_at(held.min(rows.len()));
        test.extend_from_slice(t);
        train.extend_from_slice(r);
    }
    (data.subset(&train), data.subset(&test))
}

/// Per-feature mean and standard deviation of `data`.
pub fn standardiser(data: &Dataset) -> (Vec<f32>, Vec<f32>) {
    let dim = data.dim();
    #[allow(clippy::cast_precision_loss)]
    let n = data.len().max(1) as f64;
    let mut mean = vec![0f64; dim];
    for row in &data.features {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += f64::from(*v) / n;
        }
    }
    let mut var = vec![0f64; dim];
    for row in &data.features {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (f64::from(*v) - m).powi(2) / n;
        }
    }
    #[allow(clippy::cast_possible_truncation)]
    let std = var.iter().map(|v| (v.sqrt().max(1e-6)) as f32).collect();
    #[allow(clippy::cast_possible_truncation)]
    let mean = mean.iter().map(|m| *m as f32).collect();
    (mean, std)
}

/// Applies a standardiser in place.
pub fn standardise(data: &mut Dataset, mean: &[f32], std: &[f32]) {
    for row in &mut data.features {
        for ((v, m), s) in row.iter_mut().zip(mean).zip(std) {
            *v = (*v - m) / s;
        }
    }
}

/// Non-identical splits across `parts` institutions: every class is dealt
/// out with institution-specific proportions (label skew) and the
/// institutions end up with different sizes. Every institution gets at
/// least `min_rows` rows.
pub fn split_non_iid(
    data: &Dataset,
    parts: usize,
    min_rows: usize,
    rng: &mut SplitMix,
) -> Result<Vec<Dataset>, String> {
    if parts == 0 {
        return Err("at least one client is needed".into());
    }
    if parts
        .checked_mul(min_rows)
        .is_none_or(|needed| data.len() < needed)
    {
        return Err(format!(
            "{} training rows cannot give {parts} clients {min_rows} rows each (the federation's minimum per client)",
            data.len()
        ));
    }
    let mut rows: Vec<usize> = (0..data.len()).collect();
    rng.shuffle(&mut rows);
    // Everyone first gets min_rows, then the rest is dealt by class with
    // skewed, institution-specific weights.
    let (base, rest) = rows.split_at(parts * min_rows);
    let mut assigned: Vec<Vec<usize>> = base.chunks(min_rows).map(<[usize]>::to_vec).collect();
    for class in 0..data.classes {
        #[allow(clippy::cast_precision_loss)]
        let weights: Vec<f64> = (0..parts)
            .map(|i| 0.2 + rng.unit() * (1.0 + ((i + class) % parts) as f64))
            .collect();
        let total: f64 = weights.iter().sum();
        for &row in rest.iter().filter(|&&r| data.labels.get(r) == Some(&class)) {
            let mut pick = rng.unit() * total;
            let mut chosen = parts - 1;
            for (i, w) in weights.iter().enumerate() {
                if pick < *w {
                    chosen = i;
                    break;
                }
                pick -= w;
            }
            if let Some(part) = assigned.get_mut(chosen) {
                part.push(row);
            }
        }
    }
    Ok(assigned.iter().map(|rows| data.subset(rows)).collect())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_names_bad_cells() {
        let with_shape =
            parse("3,2,a,b\n1,2,0\n3,4,1\n5,6,1\n").unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            (with_shape.len(), with_shape.dim(), with_shape.classes),
            (3, 2, 2)
        );
        let plain = parse("1,2,0\n3,4,1\n").unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(plain.len(), 2);
        let err = parse("1,2,0\n3,x,1\n").err().unwrap_or_default();
        assert!(err.contains("line 2, column 2"), "{err}");
        assert!(parse("").is_err());
        assert!(
            parse("1,2,0\n3,4,0\n")
                .err()
                .unwrap_or_default()
                .contains("same class")
        );
        assert!(
            parse("1,2,0\n3,4\n")
                .err()
                .unwrap_or_default()
                .contains("line 2")
        );
        assert!(
            parse("1,2,0.5\n3,4,1\n")
                .err()
                .unwrap_or_default()
                .contains("label")
        );
    }

    #[test]
    fn splits_cover_every_row_once_and_respect_the_minimum() {
        let text: String = (0..200).map(|i| format!("{i},{}\n", i % 3)).collect();
        let data = parse(&text).unwrap_or_else(|e| unreachable!("{e}"));
        let parts = split_non_iid(&data, 8, 10, &mut SplitMix::new(1)).unwrap_or_default();
        assert_eq!(parts.iter().map(Dataset::len).sum::<usize>(), 200);
        assert!(parts.iter().all(|p| p.len() >= 10));
        assert!(split_non_iid(&data, 30, 10, &mut SplitMix::new(1)).is_err());
    }
}
