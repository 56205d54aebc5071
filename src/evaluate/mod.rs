//! Evaluation: rolling windows and quantiles per series, budget matching, and the alert
//! state machine. Pure decisions; the evaluator task is a thin shell around them.

pub mod budgets;
