//! Plain-text tables that fit a terminal: columns as wide as their content, and when the
//! whole is too wide the text columns give way (widest first, never below their minimum),
//! their cells cut with an ellipsis.

use super::clip;

/// Terminal width every table fits in.
pub const WIDTH: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

#[derive(Debug, Clone)]
struct Column {
    header: &'static str,
    align: Align,
    /// Narrowest the column may be squeezed to; `None`: never squeezed.
    min: Option<usize>,
}

/// A table being filled.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new() -> Table {
        Table { columns: Vec::new(), rows: Vec::new() }
    }

    /// A text column that may shrink down to `min` characters.
    pub fn text(mut self, header: &'static str, min: usize) -> Table {
        self.columns.push(Column { header, align: Align::Left, min: Some(min) });
        self
    }

    /// A right-aligned column that never shrinks (numbers).
    pub fn num(mut self, header: &'static str) -> Table {
        self.columns.push(Column { header, align: Align::Right, min: None });
        self
    }

    /// Appends a row (missing cells are blank, extra ones dropped).
    pub fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.columns.len(), String::new());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table in at most `max` columns (as close as the minimum widths allow).
    pub fn render(&self, max: usize) -> String {
        let n = self.columns.len();
        let mut widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| self.rows.iter().map(|r| r[i].chars().count()).chain([c.header.len()]).max().unwrap_or(0))
            .collect();
        let total = |w: &[usize]| w.iter().sum::<usize>() + n.saturating_sub(1);
        while total(&widths) > max {
            let widest =
                (0..n).filter(|&i| self.columns[i].min.is_some_and(|m| widths[i] > m)).max_by_key(|&i| (widths[i], std::cmp::Reverse(i)));
            match widest {
                Some(i) => widths[i] -= 1,
                None => break,
            }
        }
        let mut out = String::new();
        let headers: Vec<String> = self.columns.iter().map(|c| c.header.to_string()).collect();
        for cells in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let cell = clip(cell, widths[i]);
                let pad = widths[i] - cell.chars().count();
                if i > 0 {
                    line.push(' ');
                }
                match self.columns[i].align {
                    Align::Left if i + 1 == n => line.push_str(&cell),
                    Align::Left => {
                        line.push_str(&cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(&cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

impl Default for Table {
    fn default() -> Self {
        Table::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_text_columns_give_way_and_numbers_stay_whole() {
        let mut t = Table::new().text("FUNCTION", 12).text("OPERATION", 10).num("P95");
        t.row(vec!["GenerateDynamicScenarioHandler".repeat(3), "Bedrock.InvokeModel".repeat(4), "9.00s".into()]);
        t.row(vec!["LFH".into(), "x".into(), "12ms".into()]);
        let s = t.render(60);
        assert!(s.lines().all(|l| l.chars().count() <= 60), "{s}");
        assert!(s.lines().nth(1).unwrap().ends_with("9.00s"));
        assert!(s.contains('…'));
        assert!(s.lines().next().unwrap().starts_with("FUNCTION"));
        // Narrow content stays as it is.
        let mut small = Table::new().text("A", 1).num("B");
        small.row(vec!["x".into(), "1".into()]);
        assert_eq!(small.render(100), "A B\nx 1\n");
    }
}
