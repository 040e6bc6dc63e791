//! Data sets: CSV loading (optionally gzip), a stratified train/test split,
//! feature standardisation, and non-identical splits across institutions.
//!
//! Labels are the federation's class numbers and are kept as written: a
//! client whose file holds only some of the classes (or a single one) keeps
//! its labels, and its model still has one output per class of the
//! federation.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The most classes a data set may have: labels are below this.
pub const MAX_CLASSES: usize = 1000;

/// What is wrong with a data set, and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A `.gz` file that does not decompress.
    #[error("{}: not a gzip text file: {source}", path.display())]
    Gzip {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        source: std::io::Error,
    },
    /// Bytes that are not UTF-8.
    #[error("{}: line {line}: not UTF-8 text", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The line (1-based) of the first invalid byte.
        line: usize,
    },
    /// An error in the contents of a file.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        source: Box<DataError>,
    },
    /// The CSV reader refused the text.
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    /// Nothing but blank lines.
    #[error("no data rows: the file is empty")]
    Empty,
    /// A header (or shape line) and nothing after it.
    #[error("no data rows: line {line} is a header and no row follows it")]
    OnlyHeader {
        /// The header's line.
        line: usize,
    },
    /// A row with fewer than two cells.
    #[error("line {line}: needs at least one feature and a label, found {found} column(s)")]
    TooFewColumns {
        /// The line (1-based).
        line: usize,
        /// Cells on it.
        found: usize,
    },
    /// A row whose width differs from the first row's (or the header's).
    #[error("line {line}: {found} columns, expected {expected} (as on line {first})")]
    ColumnCount {
        /// The line (1-based).
        line: usize,
        /// Columns of the first row or header.
        expected: usize,
        /// Columns on this line.
        found: usize,
        /// The line that set `expected`.
        first: usize,
    },
    /// A feature that is not a finite number.
    #[error("line {line}, column {column}: {cell:?} is not a number")]
    BadCell {
        /// The line (1-based).
        line: usize,
        /// The column (1-based).
        column: usize,
        /// The cell's text.
        cell: String,
    },
    /// A label that is not a non-negative integer.
    #[error("line {line}, column {column}: the label {cell:?} is not a class number 0, 1, 2, ...")]
    BadLabel {
        /// The line (1-based).
        line: usize,
        /// The column (1-based).
        column: usize,
        /// The cell's text.
        cell: String,
    },
    /// A label at or above [`MAX_CLASSES`].
    #[error(
        "line {line}, column {column}: the label {label} is too large; class numbers go up to {}",
        MAX_CLASSES - 1
    )]
    LabelTooLarge {
        /// The line (1-based).
        line: usize,
        /// The column (1-based).
        column: usize,
        /// The label.
        label: u64,
    },
    /// A label outside an explicit number of classes.
    #[error(
        "data row {row} has the label {label}, but the federation has {classes} classes (labels below {classes})"
    )]
    LabelOutOfRange {
        /// The data row (1-based, headers and blank lines not counted).
        row: usize,
        /// The label.
        label: usize,
        /// The federation's classes.
        classes: usize,
    },
    /// A federation's training rows all of one class.
    #[error("every row has the same class ({label}); there is nothing to learn")]
    SingleClass {
        /// That class.
        label: usize,
    },
    /// No clients to split for.
    #[error("at least one client is needed")]
    NoClients,
    /// Too few rows for the clients' minimum.
    #[error(
        "{rows} training rows cannot give {clients} clients {min_rows} rows each (the federation's minimum per client)"
    )]
    TooFewRows {
        /// Training rows.
        rows: usize,
        /// Clients.
        clients: usize,
        /// Rows each client needs.
        min_rows: usize,
    },
}

/// A labelled data set: rows of features and the federation's class numbers.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Features, one row per sample.
    pub features: Vec<Vec<f32>>,
    /// Labels in 0..classes, as written in the file (never renumbered).
    pub labels: Vec<usize>,
    /// Number of classes of the federation: the largest label + 1 of a
    /// loaded file, or an explicit count ([`Dataset::with_classes`]). Some
    /// classes may have no rows here.
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

    /// The same rows for a federation of `classes` classes (e.g. a
    /// client's file, whose largest label may be below the federation's).
    ///
    /// # Errors
    /// A label that is not below `classes`.
    pub fn with_classes(mut self, classes: usize) -> Result<Self, DataError> {
        if let Some((row, &label)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, label)| **label >= classes)
        {
            return Err(DataError::LabelOutOfRange {
                row: row + 1,
                label,
                classes,
            });
        }
        self.classes = classes;
        Ok(self)
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
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the high 64 bits of a 64-bit value times n are below n, itself a usize"
    )]
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

/// Reads a CSV data set as [`parse`] describes; gzip when the file name
/// ends in `.gz`.
///
/// # Errors
/// An unreadable file, and everything [`load_bytes`] refuses.
pub fn load(path: &Path) -> Result<Dataset, DataError> {
    let raw = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    load_bytes(path, &raw)
}

/// A data set from the bytes of the file `path` (read already, or
/// shipped inside the binary): gzip when the name ends in `.gz`, then
/// UTF-8 text as [`parse`] describes.
///
/// # Errors
/// Bytes that do not decompress or are not UTF-8, and everything [`parse`]
/// refuses, named with the file.
pub fn load_bytes(path: &Path, raw: &[u8]) -> Result<Dataset, DataError> {
    let decompressed;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw)
            .read_to_end(&mut out)
            .map_err(|source| DataError::Gzip {
                path: path.to_path_buf(),
                source,
            })?;
        decompressed = out;
        decompressed.as_slice()
    } else {
        raw
    };
    let text = std::str::from_utf8(bytes).map_err(|e| DataError::NotUtf8 {
        path: path.to_path_buf(),
        line: 1 + bytes
            .iter()
            .take(e.valid_up_to())
            .filter(|&&b| b == b'\n')
            .count(),
    })?;
    parse(text).map_err(|e| DataError::InFile {
        path: path.to_path_buf(),
        source: Box::new(e),
    })
}

/// Parses CSV text: numeric features and an integer class label in the last
/// column, every row as wide as the first. The first row may be a shape
/// line `rows,features,name,...` (two integers, then names) or a header
/// (no cell a number); both are skipped, and a header sets the width.
/// Blank lines are skipped; CRLF line ends, quoted cells and a UTF-8 byte
/// order mark are accepted. Labels are kept as written (the federation's
/// class numbers); `classes` is the largest label + 1.
///
/// # Errors
/// No data rows, a row of the wrong width, a cell that is not a finite
/// number, a label that is not a class number below [`MAX_CLASSES`]; each
/// names the line (1-based) and, for a cell, the column (1-based).
pub fn parse(text: &str) -> Result<Dataset, DataError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut features = Vec::new();
    let mut labels = Vec::new();
    // The width every row must have and the line that set it.
    let mut width: Option<(usize, usize)> = None;
    let mut header = None;
    let mut lines = Lines {
        text: text.as_bytes(),
        offset: 0,
        line: 1,
    };
    for record in reader.records() {
        let record = record?;
        let line = lines.at(record.position());
        let cells: Vec<&str> = record.iter().collect();
        if matches!(cells.as_slice(), [""]) {
            // A line of only spaces.
            continue;
        }
        if labels.is_empty() && header.is_none() {
            if is_shape_line(&cells) {
                header = Some(line);
                continue;
            }
            if cells.iter().all(|cell| !is_number(cell)) {
                header = Some(line);
                width = Some((cells.len(), line));
                continue;
            }
        }
        let Some((label_cell, feature_cells)) = cells.split_last() else {
            continue;
        };
        match width {
            Some((expected, first)) if expected != cells.len() => {
                return Err(DataError::ColumnCount {
                    line,
                    expected,
                    found: cells.len(),
                    first,
                });
            }
            _ if feature_cells.is_empty() => {
                return Err(DataError::TooFewColumns {
                    line,
                    found: cells.len(),
                });
            }
            Some(_) => {}
            None => width = Some((cells.len(), line)),
        }
        let row = feature_cells
            .iter()
            .enumerate()
            .map(|(column, cell)| {
                cell.parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| DataError::BadCell {
                        line,
                        column: column + 1,
                        cell: (*cell).to_owned(),
                    })
            })
            .collect::<Result<Vec<f32>, DataError>>()?;
        labels.push(parse_label(label_cell, line, cells.len())?);
        features.push(row);
    }
    let Some(&largest) = labels.iter().max() else {
        return Err(header.map_or(DataError::Empty, |line| DataError::OnlyHeader { line }));
    };
    Ok(Dataset {
        features,
        labels,
        classes: largest + 1,
    })
}

/// Line numbers as an editor shows them. The `csv` crate's own
/// `Position::line` is wrong after CRLF line ends and blank lines (rust-csv
/// issues 395 and 208), so the line is counted here from the record's byte
/// offset, which may point at the line ends before the record.
struct Lines<'a> {
    text: &'a [u8],
    /// Where the previous record started.
    offset: usize,
    /// Its line (1-based).
    line: usize,
}

impl Lines<'_> {
    /// The line on which a record at `position` starts.
    fn at(&mut self, position: Option<&csv::Position>) -> usize {
        let mut start = position
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(self.offset)
            .clamp(self.offset, self.text.len());
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let between = self.text.get(self.offset..start).unwrap_or_default();
        // A line ends at "\n", "\r\n" or a lone "\r".
        self.line += between
            .iter()
            .enumerate()
            .filter(|&(i, &b)| {
                b == b'\n' || (b == b'\r' && self.text.get(self.offset + i + 1) != Some(&b'\n'))
            })
            .count();
        self.offset = start;
        self.line
    }
}

/// A label cell: a non-negative integer (`2` or `2.0`) below
/// [`MAX_CLASSES`].
fn parse_label(cell: &str, line: usize, column: usize) -> Result<usize, DataError> {
    let value = cell
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && v.fract() == 0.0 && *v >= 0.0)
        .ok_or_else(|| DataError::BadLabel {
            line,
            column,
            cell: cell.to_owned(),
        })?;
    let limit = MAX_CLASSES as f64;
    if value >= limit {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a non-negative whole number, capped at u64::MAX, only to be reported"
        )]
        let label = value.min(u64::MAX as f64) as u64;
        return Err(DataError::LabelTooLarge {
            line,
            column,
            label,
        });
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a whole number in 0..MAX_CLASSES, checked above"
    )]
    Ok(value as usize)
}

/// A finite number.
fn is_number(cell: &str) -> bool {
    cell.parse::<f64>().is_ok_and(f64::is_finite)
}

/// The optional first line: `rows,features,name,...` with two integers.
fn is_shape_line(cells: &[&str]) -> bool {
    cells.len() >= 2
        && cells.iter().take(2).all(|c| c.parse::<u64>().is_ok())
        && cells.iter().skip(2).any(|c| !is_number(c))
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
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "`as` saturates: a negative fraction holds out no row, and more than the rows is capped below"
        )]
        let held = ((rows.len() as f64) * test_fraction).round() as usize;
        let (t, r) = rows.split_at(held.min(rows.len()));
        test.extend_from_slice(t);
        train.extend_from_slice(r);
    }
    (data.subset(&train), data.subset(&test))
}

/// Per-feature mean and standard deviation of `data`.
#[expect(
    clippy::cast_possible_truncation,
    reason = "features are f32; their statistics are accumulated in f64"
)]
pub fn standardiser(data: &Dataset) -> (Vec<f32>, Vec<f32>) {
    let dim = data.dim();
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
    let std = var.iter().map(|v| (v.sqrt().max(1e-6)) as f32).collect();
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
/// least `min_rows` rows. Labels and the number of classes are kept, so a
/// part may lack some classes.
///
/// # Errors
/// No parts, rows all of one class, or too few rows for `min_rows` each.
pub fn split_non_iid(
    data: &Dataset,
    parts: usize,
    min_rows: usize,
    rng: &mut SplitMix,
) -> Result<Vec<Dataset>, DataError> {
    if parts == 0 {
        return Err(DataError::NoClients);
    }
    if let Some(&label) = data.labels.first()
        && data.labels.iter().all(|l| *l == label)
    {
        return Err(DataError::SingleClass { label });
    }
    if parts
        .checked_mul(min_rows)
        .is_none_or(|needed| data.len() < needed)
    {
        return Err(DataError::TooFewRows {
            rows: data.len(),
            clients: parts,
            min_rows,
        });
    }
    let mut rows: Vec<usize> = (0..data.len()).collect();
    rng.shuffle(&mut rows);
    // Everyone first gets min_rows, then the rest is dealt by class with
    // skewed, institution-specific weights.
    let (base, rest) = rows.split_at(parts * min_rows);
    let mut assigned: Vec<Vec<usize>> = (0..parts)
        .map(|i| {
            base.get(i * min_rows..(i + 1) * min_rows)
                .unwrap_or_default()
                .to_vec()
        })
        .collect();
    for class in 0..data.classes {
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
mod tests {
    use super::*;

    fn ok(text: &str) -> Dataset {
        parse(text).unwrap_or_else(|e| unreachable!("{e}"))
    }

    fn refused(text: &str) -> String {
        parse(text).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn parses_both_forms_and_names_bad_cells() {
        let with_shape = ok("3,2,a,b\n1,2,0\n3,4,1\n5,6,1\n");
        assert_eq!(
            (with_shape.len(), with_shape.dim(), with_shape.classes),
            (3, 2, 2)
        );
        let plain = ok("1,2,0\n3,4,1\n");
        assert_eq!(plain.len(), 2);
        assert!(refused("1,2,0.5\n3,4,1\n").contains("label"));
        assert!(refused("1,2,-1\n").contains("line 1, column 3"));
        let large = refused("1,2,0\n3,4,1000\n");
        assert!(large.contains("line 2, column 3"), "{large}");
        assert!(large.contains("999"), "{large}");
    }

    #[test]
    fn the_shipped_data_sets_parse() {
        let text = std::str::from_utf8(include_bytes!("../../../examples/data/breast_cancer.csv"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let cancer = ok(text);
        assert_eq!((cancer.len(), cancer.dim(), cancer.classes), (569, 30, 2));
        let mut digits = String::new();
        flate2::read::GzDecoder::new(
            include_bytes!("../../../examples/data/digits.csv.gz").as_slice(),
        )
        .read_to_string(&mut digits)
        .unwrap_or_else(|e| unreachable!("{e}"));
        let digits = ok(&digits);
        assert_eq!((digits.len(), digits.dim(), digits.classes), (1797, 64, 10));
    }

    #[test]
    fn a_header_row_is_accepted() {
        let data = ok("width,height,class\n1,2,0\n3,4,1\n");
        assert_eq!(
            (data.len(), data.dim(), data.labels.clone()),
            (2, 2, vec![0, 1])
        );
        // Quoted header cells, and a header wider than the rows.
        let quoted = ok("\"a, b\",\"c\",label\n1,2,1\n");
        assert_eq!(quoted.labels, vec![1]);
        let err = refused("a,b,c,label\n1,2,0\n");
        assert!(
            err.contains("line 2: 3 columns, expected 4 (as on line 1)"),
            "{err}"
        );
        // A header only.
        let err = refused("a,b,label\n");
        assert!(err.contains("no data rows"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn a_bad_cell_names_its_line_and_column() {
        let err = refused("1,2,0\n3,x,1\n");
        assert!(err.contains("line 2, column 2"), "{err}");
        assert!(err.contains("\"x\" is not a number"), "{err}");
        // Lines as an editor counts them: header and blank lines count.
        let err = refused("a,b,label\n\n1,2,0\n\n3,4,1\n5,inf,1\n");
        assert!(err.contains("line 6, column 2"), "{err}");
        let err = refused("a,b,label\r\n1,2,0\r\n3,,1\r\n");
        assert!(err.contains("line 3, column 2"), "{err}");
        // CRLF, blank lines and a quoted cell over two lines (the csv
        // crate's own line numbers are wrong there).
        let err = refused("1,2,0\r\n\r\n\r\n3,4,1\r\n\"x\ny\",1,0\r\n");
        assert!(err.contains("line 5, column 1"), "{err}");
        let err = refused("1,2,0\r\n\r\n3,4,1\r\n 5 ,\"\",1\r\n");
        assert!(err.contains("line 4, column 2"), "{err}");
        let err = refused("1,2,0\r3,x,1\r");
        assert!(err.contains("line 2, column 2"), "{err}");
        assert!(matches!(
            parse("1,2,0\n3,NaN,1\n"),
            Err(DataError::BadCell {
                line: 2,
                column: 2,
                ..
            })
        ));
    }

    #[test]
    fn a_row_of_the_wrong_width_is_refused_with_its_line() {
        let err = refused("1,2,0\n3,4,1\n5,6\n");
        assert!(
            err.contains("line 3: 2 columns, expected 3 (as on line 1)"),
            "{err}"
        );
        let err = refused("\n1,2,0\n3,4,5,1\n");
        assert!(
            err.contains("line 3: 4 columns, expected 3 (as on line 2)"),
            "{err}"
        );
        assert!(matches!(
            parse("1,2,0\n3,4,5,1\n"),
            Err(DataError::ColumnCount {
                line: 2,
                expected: 3,
                found: 4,
                first: 1
            })
        ));
        let err = refused("0\n1\n");
        assert!(
            err.contains("line 1: needs at least one feature and a label"),
            "{err}"
        );
    }

    #[test]
    fn labels_are_not_remapped() {
        // Classes 2 and 5 only: labels kept, classes = largest + 1.
        let data = ok("1,2,5\n3,4,2\n5,6,5\n");
        assert_eq!(data.labels, vec![5, 2, 5]);
        assert_eq!(data.classes, 6);
        // A single class is a valid client file.
        let single = ok("1,2,2\n3,4,2\n");
        assert_eq!(single.labels, vec![2, 2]);
        assert_eq!(single.classes, 3);
        // An explicit count (the federation's) keeps the labels too.
        let wider = single
            .clone()
            .with_classes(10)
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!((wider.labels.clone(), wider.classes), (vec![2, 2], 10));
        let err = single
            .with_classes(2)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("data row 1 has the label 2"), "{err}");
        assert!(err.contains("2 classes"), "{err}");
        // "2.0" is the class number 2.
        assert_eq!(ok("1,2.0\n").labels, vec![2]);
    }

    #[test]
    fn crlf_and_a_trailing_newline_work() {
        let data = ok("\u{feff}f1,f2,label\r\n1,2,0\r\n3,4,1\r\n\r\n");
        assert_eq!((data.len(), data.dim(), data.classes), (2, 2, 2));
        assert_eq!(data.features, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        let shape = ok("2,2,no,yes\r\n 1 , 2 , 0 \r\n3,4,1\r\n");
        assert_eq!((shape.len(), shape.labels.clone()), (2, vec![0, 1]));
        let no_final_newline = ok("1,2,0\r\n3,4,1");
        assert_eq!(no_final_newline.len(), 2);
    }

    #[test]
    fn an_empty_file_is_refused_clearly() {
        for text in ["", "\n", "\r\n\r\n", "  \n\n"] {
            let err = parse(text).err();
            assert!(matches!(err, Some(DataError::Empty)), "{text:?}: {err:?}");
            let message = err.map(|e| e.to_string()).unwrap_or_default();
            assert_eq!(message, "no data rows: the file is empty");
        }
    }

    #[test]
    fn load_names_the_file_and_reads_gzip() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let plain = dir.path().join("part.csv");
        std::fs::write(&plain, "a,b,label\r\n1,2,1\r\n3,x,1\r\n")
            .unwrap_or_else(|e| unreachable!("{e}"));
        let err = load(&plain)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("part.csv: line 3, column 2"), "{err}");
        let gz = dir.path().join("part.csv.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut encoder, b"1,2,3\n4,5,1\n")
            .unwrap_or_else(|e| unreachable!("{e}"));
        std::fs::write(
            &gz,
            encoder.finish().unwrap_or_else(|e| unreachable!("{e}")),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let data = load(&gz).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!((data.labels.clone(), data.classes), (vec![3, 1], 4));
        let empty = dir.path().join("empty.csv");
        std::fs::write(&empty, "").unwrap_or_else(|e| unreachable!("{e}"));
        let err = load(&empty)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.ends_with("empty.csv: no data rows: the file is empty"),
            "{err}"
        );
        let latin1 = dir.path().join("latin1.csv");
        std::fs::write(&latin1, b"1,2,0\n3,\xe9,1\n").unwrap_or_else(|e| unreachable!("{e}"));
        let err = load(&latin1)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("latin1.csv: line 2: not UTF-8"), "{err}");
        let missing = load(&dir.path().join("missing.csv")).err();
        assert!(matches!(missing, Some(DataError::Io { .. })), "{missing:?}");
    }

    #[test]
    fn splits_cover_every_row_once_and_respect_the_minimum() {
        let text: String = (0..200).map(|i| format!("{i},{}\n", i % 3)).collect();
        let data = ok(&text);
        let parts = split_non_iid(&data, 8, 10, &mut SplitMix::new(1)).unwrap_or_default();
        assert_eq!(parts.iter().map(Dataset::len).sum::<usize>(), 200);
        assert!(parts.iter().all(|p| p.len() >= 10));
        assert!(parts.iter().all(|p| p.classes == 3));
        assert!(split_non_iid(&data, 30, 10, &mut SplitMix::new(1)).is_err());
        let single = ok("1,0\n2,0\n3,0\n");
        let err = split_non_iid(&single, 1, 1, &mut SplitMix::new(1))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("same class"), "{err}");
        // No minimum: every row still dealt out.
        let parts = split_non_iid(&data, 4, 0, &mut SplitMix::new(2)).unwrap_or_default();
        assert_eq!(parts.iter().map(Dataset::len).sum::<usize>(), 200);
    }
}
