//! Which budget judges a series: among the budgets whose globs match its function,
//! operation and env, the most specific one (operation, then function, then env literals);
//! configuration order breaks ties, which validation already forbids for overlapping ones.

use crate::config::BudgetConfig;
use crate::config::validate::budget_specificity;
use crate::glob;
use crate::model::alert::Target;

/// The budget that applies to a target, with its index in the config.
pub fn match_budget<'a>(budgets: &'a [BudgetConfig], t: &Target) -> Option<(usize, &'a BudgetConfig)> {
    budgets
        .iter()
        .enumerate()
        .filter(|(_, b)| {
            glob::matches(&b.function, &t.function)
                && glob::matches(&b.operation, &t.operation)
                && glob::matches(&b.env, &t.env)
                && glob::matches(&b.account, &t.account)
                && glob::matches(&b.region, &t.region)
        })
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
        let t = Target::unscoped;
        assert_eq!(match_budget(&budgets, &t("PROD", "GDSH", "Bedrock.InvokeModel")).unwrap().0, 2);
        assert_eq!(match_budget(&budgets, &t("Dev", "GDSH", "Bedrock.InvokeModel")).unwrap().0, 1);
        assert_eq!(match_budget(&budgets, &t("Dev", "GDSH", "DynamoDB.PutItem")).unwrap().0, 0);
        assert!(match_budget(&budgets[1..], &t("Dev", "GDSH", "DynamoDB.PutItem")).is_none());
        // Account and region globs: "*" by default; a budget can be an account's alone.
        let mut only_prod = budgets.clone();
        only_prod[2].account = "prod".into();
        let in_prod = Target { account: "prod".into(), region: "eu-west-1".into(), ..t("PROD", "GDSH", "Bedrock.InvokeModel") };
        assert_eq!(match_budget(&only_prod, &in_prod).unwrap().0, 2);
        assert_eq!(match_budget(&only_prod, &t("PROD", "GDSH", "Bedrock.InvokeModel")).unwrap().0, 1, "not the default account");
    }
}
