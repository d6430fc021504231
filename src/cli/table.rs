//! A bordered table like PM2's, sized to its content. Cells may carry ANSI
//! colors (widths are measured without them) and several lines.

pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn visible_width(s: &str) -> usize {
    let mut w = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => w += 1,
        }
    }
    w
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| visible_width(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                let w = c.lines().map(visible_width).max().unwrap_or(0);
                widths[i] = widths[i].max(w);
            }
        }
        let rule = |l: &str, m: &str, r: &str| {
            let mut s = String::from(l);
            for (i, w) in widths.iter().enumerate() {
                s.push_str(&"─".repeat(w + 2));
                s.push_str(if i + 1 == n { r } else { m });
            }
            s.push('\n');
            s
        };
        let line = |cells: &[String]| {
            let height = cells
                .iter()
                .map(|c| c.lines().count().max(1))
                .max()
                .unwrap_or(1);
            let mut s = String::new();
            for k in 0..height {
                s.push('│');
                for (i, w) in widths.iter().enumerate() {
                    let c = cells.get(i).and_then(|c| c.lines().nth(k)).unwrap_or("");
                    s.push(' ');
                    s.push_str(c);
                    s.push_str(&" ".repeat(w - visible_width(c) + 1));
                    s.push('│');
                }
                s.push('\n');
            }
            s
        };
        let mut out = rule("┌", "┬", "┐");
        if self.headers.iter().any(|h| !h.is_empty()) {
            out.push_str(&line(&self.headers));
            out.push_str(&rule("├", "┼", "┤"));
        }
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out.push_str(&rule("└", "┴", "┘"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_content_and_ignore_colors() {
        let mut t = Table::new(&["id", "name"]);
        t.row(vec!["0".into(), "\x1b[32mapi\x1b[0m".into()]);
        t.row(vec!["10".into(), "worker".into()]);
        let s = t.render();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[1], "│ id │ name   │");
        assert_eq!(lines[4], "│ 10 │ worker │");
        assert_eq!(lines[3], "│ 0  │ \x1b[32mapi\x1b[0m    │");
        assert!(lines
            .iter()
            .all(|l| visible_width(l) == visible_width(lines[0])));
    }

    #[test]
    fn multiline_cells_take_several_rows() {
        let mut t = Table::new(&["k", "v"]);
        t.row(vec!["env".into(), "A=1\nBB=2".into()]);
        let s = t.render();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[3], "│ env │ A=1  │");
        assert_eq!(lines[4], "│     │ BB=2 │");
    }
}
