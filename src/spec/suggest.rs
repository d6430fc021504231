//! "Did you mean …?": the closest known word to a mistyped one.

/// Edit distance between two strings, by characters: insertions,
/// deletions, substitutions and swaps of two neighbours each count one
/// (a swap is the commonest typo: `scirpt`).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// `maxMemoryRestart`, `max-memory-restart` and `max_memory_restart` are
/// the same mistake: compare without case and separators.
fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The candidate closest to `word`, if it is close enough to be what was
/// meant: about one typo per three characters, at most three.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = normalize(word);
    let limit = (w.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&w, &normalize(c)), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            edit_distance("max_memmory_restart", "max_memory_restart"),
            1
        );
        assert_eq!(edit_distance("scirpt", "script"), 1);
    }

    #[test]
    fn suggestions() {
        let keys = ["name", "script", "instances", "max_memory_restart", "env"];
        assert_eq!(
            closest("max_memmory_restart", keys),
            Some("max_memory_restart")
        );
        assert_eq!(
            closest("maxMemoryRestart", keys),
            Some("max_memory_restart")
        );
        assert_eq!(closest("instance", keys), Some("instances"));
        assert_eq!(closest("scirpt", keys), Some("script"));
        assert_eq!(closest("nmae", keys), Some("name"));
        assert_eq!(closest("envs", keys), Some("env"));
        assert_eq!(closest("completely_unrelated", keys), None);
        assert_eq!(closest("foo", keys), None);
    }
}
