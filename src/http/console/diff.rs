//! A line diff between two versions of a memory (longest common subsequence), for the history
//! page. The common head and tail are taken off first; when what is left is too big to compare
//! line by line, it is shown as removed then added.

/// The most cells (lines before × lines after) compared line by line.
const MAX_CELLS: usize = 1_000_000;

/// Each line of the result: `" "` kept, `"-"` removed, `"+"` added.
pub fn lines(before: &str, after: &str) -> Vec<(&'static str, String)> {
    let old: Vec<&str> = before.lines().collect();
    let new: Vec<&str> = after.lines().collect();
    let head = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let tail = old[head..]
        .iter()
        .rev()
        .zip(new[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (old_mid, new_mid) = (&old[head..old.len() - tail], &new[head..new.len() - tail]);
    let mut out: Vec<(&'static str, String)> =
        old[..head].iter().map(|l| (" ", (*l).to_owned())).collect();
    if old_mid.len().saturating_mul(new_mid.len()) > MAX_CELLS {
        out.extend(old_mid.iter().map(|l| ("-", (*l).to_owned())));
        out.extend(new_mid.iter().map(|l| ("+", (*l).to_owned())));
    } else {
        middle(old_mid, new_mid, &mut out);
    }
    out.extend(
        old[old.len() - tail..]
            .iter()
            .map(|l| (" ", (*l).to_owned())),
    );
    out
}

fn middle(old: &[&str], new: &[&str], out: &mut Vec<(&'static str, String)>) {
    let (n, m) = (old.len(), new.len());
    // common[i][j]: the longest common subsequence of old[i..] and new[j..].
    let mut common = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if old[i] == new[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            out.push((" ", old[i].to_owned()));
            (i, j) = (i + 1, j + 1);
        } else if i < n && (j == m || common[i + 1][j] >= common[i][j + 1]) {
            out.push(("-", old[i].to_owned()));
            i += 1;
        } else {
            out.push(("+", new[j].to_owned()));
            j += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_shows_as_removed_and_added_between_kept_lines() {
        let diff = lines("a\nb\nc", "a\nB\nc\nd");
        let kinds: Vec<(&str, &str)> = diff.iter().map(|(k, t)| (*k, t.as_str())).collect();
        assert_eq!(
            kinds,
            vec![(" ", "a"), ("-", "b"), ("+", "B"), (" ", "c"), ("+", "d")]
        );
    }

    #[test]
    fn equal_texts_have_no_changes() {
        assert!(lines("x\ny", "x\ny").iter().all(|(kind, _)| *kind == " "));
    }
}
