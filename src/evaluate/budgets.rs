//! Which budget judges a series: among the budgets whose globs match its function,
//! operation and env, the most specific one (operation, then function, then env literals);
//! configuration order breaks ties, which validation already forbids for overlapping ones.

use crate::config::BudgetConfig;
use crate::config::validate::budget_specificity;
use crate::glob;

/// The budget that applies to (env, function, operation), with its index in the config.
pub fn match_budget<'a>(budgets: &'a [BudgetConfig], env: &str, function: &str, operation: &str) -> Option<(usize, &'a BudgetConfig)> {
    budgets
        .iter()
        .enumerate()
        .filter(|(_, b)| glob::matches(&b.function, function) && glob::matches(&b.operation, operation) && glob::matches(&b.env, env))
        .max_by(|(ia, a), (ib, b)| budget_specificity(a).cmp(&budget_specificity(b)).then(ib.cmp(ia)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn b(function: &str, operation: &str, env: &str, p95: u64) -> BudgetConfig {
        BudgetConfig {
            function: function.into(),
            operation: operation.into(),
            env: env.into(),
            p95: Some(Duration::from_secs(p95)),
            ..BudgetConfig::default()
        }
    }

    #[test]
    fn most_specific_wins() {
        let budgets = vec![b("*", "*", "*", 10), b("*", "Bedrock.InvokeModel", "*", 5), b("*", "Bedrock.InvokeModel", "PROD", 4)];
        assert_eq!(match_budget(&budgets, "PROD", "GDSH", "Bedrock.InvokeModel").unwrap().0, 2);
        assert_eq!(match_budget(&budgets, "Dev", "GDSH", "Bedrock.InvokeModel").unwrap().0, 1);
        assert_eq!(match_budget(&budgets, "Dev", "GDSH", "DynamoDB.PutItem").unwrap().0, 0);
        assert!(match_budget(&budgets[1..], "Dev", "GDSH", "DynamoDB.PutItem").is_none());
    }
}
