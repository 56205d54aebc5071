//! Glob patterns for budgets (`*` any run of characters, `?` one character): matching a
//! name, deciding whether two patterns can match a common name, and how specific a pattern is.

/// Whether `pattern` matches all of `text`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with single-star backtracking: linear in practice, no recursion.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether some string is matched by both patterns.
pub fn intersects(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // reach[i][j]: the prefixes a[..i] and b[..j] can match one common string.
    let mut reach = vec![vec![false; b.len() + 1]; a.len() + 1];
    reach[0][0] = true;
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            if !reach[i][j] {
                continue;
            }
            if i < a.len() && a[i] == '*' {
                reach[i + 1][j] = true;
                if j < b.len() {
                    reach[i][j + 1] = true;
                }
            }
            if j < b.len() && b[j] == '*' {
                reach[i][j + 1] = true;
                if i < a.len() {
                    reach[i + 1][j] = true;
                }
            }
            if i < a.len() && j < b.len() && a[i] != '*' && b[j] != '*' && (a[i] == b[j] || a[i] == '?' || b[j] == '?') {
                reach[i + 1][j + 1] = true;
            }
        }
    }
    reach[a.len()][b.len()]
}

/// Specificity of a pattern: literal characters count, wildcards don't. `*` is 0.
pub fn specificity(pattern: &str) -> usize {
    pattern.chars().filter(|&c| c != '*' && c != '?').count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matching() {
        assert!(matches("*", "anything"));
        assert!(matches("*", ""));
        assert!(matches("Bedrock.*", "Bedrock.InvokeModel"));
        assert!(!matches("Bedrock.*", "DynamoDB.PutItem"));
        assert!(matches("*Handler", "GenerateDynamicScenarioHandler"));
        assert!(matches("P?OD", "PROD"));
        assert!(!matches("PROD", "PRODX"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
    }

    #[test]
    fn intersecting() {
        assert!(intersects("*", "PROD"));
        assert!(intersects("Bedrock.*", "*.InvokeModel"));
        assert!(!intersects("PROD", "Dev"));
        assert!(!intersects("Bedrock.*", "DynamoDB.*"));
        assert!(intersects("a?c", "*c"));
    }

    proptest! {
        #[test]
        fn a_literal_matched_by_both_means_they_intersect(p in "[ab*?]{0,6}", q in "[ab*?]{0,6}", t in "[ab]{0,6}") {
            if matches(&p, &t) && matches(&q, &t) {
                prop_assert!(intersects(&p, &q));
            }
        }

        #[test]
        fn a_literal_pattern_matches_itself(t in "[a-zA-Z.]{0,20}") {
            prop_assert!(matches(&t, &t));
        }
    }
}
