//! Aligned text: cells measured by their display width (a CJK character or
//! an emoji takes two columns of a terminal, a combining mark none), and
//! cut with `…` when wider than a listing's column may be (but for the last
//! column, which has nothing to its right to push).

use std::borrow::Cow;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// The widest a cell of a listing (`list`, `audit list`, `watch`) may be,
/// in columns, but for the last column; wider values are cut to this
/// width, ending in `…`. The whole value is in `--output json`.
pub const MAX_CELL_WIDTH: usize = 40;

/// The columns `text` takes on a terminal.
pub fn width(text: &str) -> usize {
    text.width()
}

/// `text` cut to at most `max` columns, ending in `…` when it was cut.
pub fn cut(text: &str, max: usize) -> Cow<'_, str> {
    if width(text) <= max {
        return Cow::Borrowed(text);
    }
    let room = max.saturating_sub(1);
    // Characters one by one, then a check of the prefix as a whole, whose
    // width can differ (emoji sequences, variation selectors).
    let mut end = 0;
    let mut used = 0;
    for (at, c) in text.char_indices() {
        used += c.width().unwrap_or(0);
        if used > room {
            break;
        }
        end = at + c.len_utf8();
    }
    let mut prefix = &text[..end];
    while width(prefix) > room {
        let last = prefix.chars().next_back().map_or(0, char::len_utf8);
        prefix = &prefix[..prefix.len() - last];
    }
    Cow::Owned(format!("{prefix}…"))
}

/// `text` followed by spaces up to `columns` (none when it is as wide or
/// wider).
pub fn pad(text: &str, columns: usize) -> String {
    let spaces = columns.saturating_sub(width(text));
    format!("{text}{}", " ".repeat(spaces))
}

/// A cell of a listing: cut to [`MAX_CELL_WIDTH`] unless it is in the
/// last column.
pub fn listing_cell(text: &str, last: bool) -> Cow<'_, str> {
    if last {
        Cow::Borrowed(text)
    } else {
        cut(text, MAX_CELL_WIDTH)
    }
}

/// Rows of cells as lines: each cell but the last of its row cut to
/// [`MAX_CELL_WIDTH`], padded to its column's widest cell, two spaces
/// between columns, no trailing spaces.
pub fn lines(rows: &[Vec<String>]) -> Vec<String> {
    let rows: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(i, cell)| listing_cell(cell, i + 1 == row.len()))
                .collect()
        })
        .collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|row| row.get(i))
                .map(|cell| width(cell))
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, &columns)| pad(cell, columns))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_characters_take_two_columns() {
        assert_eq!(width("R41"), 3);
        assert_eq!(width("山田太郎"), 8);
        assert_eq!(width("🦀x"), 3);
        assert_eq!(width("e\u{301}"), 1, "a combining accent takes none");
    }

    #[test]
    fn long_values_are_cut_to_the_width_with_an_ellipsis() {
        assert_eq!(cut("R41", 3), "R41");
        assert_eq!(cut("R41-long", 5), "R41-…");
        assert_eq!(width(&cut("R41-long", 5)), 5);
        // A wide character that would straddle the edge goes entirely.
        assert_eq!(cut("山田太郎", 6), "山田…");
        assert_eq!(cut("山田太郎", 5), "山田…");
        assert_eq!(cut("🦀🦀🦀", 4), "🦀…");
        assert_eq!(cut("abc", 0), "…");
        let long = "x".repeat(100);
        assert_eq!(width(&cut(&long, MAX_CELL_WIDTH)), MAX_CELL_WIDTH);
    }

    #[test]
    fn columns_line_up_by_display_width() {
        let rows = vec![
            vec!["USER".to_owned(), "STATE".to_owned()],
            vec!["山田".to_owned(), "open".to_owned()],
            vec!["R41".to_owned(), "ended".to_owned()],
            vec!["🦀".to_owned(), "-".to_owned()],
        ];
        let lines = lines(&rows);
        let state_column: Vec<usize> = lines
            .iter()
            .map(|line| {
                let (before, _) = line.rsplit_once("  ").unwrap();
                width(before) + 2
            })
            .collect();
        assert!(
            state_column.iter().all(|&c| c == state_column[0]),
            "{lines:#?}"
        );
        assert_eq!(lines[1], "山田  open");
        assert_eq!(lines[3], "🦀    -");
    }

    #[test]
    fn cells_wider_than_the_maximum_are_cut_and_the_rest_still_line_up() {
        let long = "R".repeat(MAX_CELL_WIDTH + 10);
        let rows = vec![
            vec!["USER".to_owned(), "STATE".to_owned(), "DETAIL".to_owned()],
            vec![long.clone(), "open".to_owned(), long.clone()],
        ];
        let lines = lines(&rows);
        assert_eq!(
            lines[1],
            format!("{}…  open   {long}", "R".repeat(MAX_CELL_WIDTH - 1)),
            "the last column is not cut"
        );
        assert_eq!(lines[0].find("STATE"), Some(MAX_CELL_WIDTH + 2));
    }
}
