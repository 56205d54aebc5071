//! The checks one segment document's entity passes before it becomes a span: id, name and
//! times present and sane (between 2000 and 2100, no longer than a day, ending after they
//! start). A failed check is a reason code and a detail; the caller turns it into a
//! rejection and keeps the rest of the trace.

use super::*;

/// Cuts a string to at most `max` characters.
pub(super) fn cap(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((pos, _)) => format!("{}…", &s[..pos]),
        None => s.to_string(),
    }
}

/// The checked core fields of one entity.
pub(super) struct Core {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) start_s: f64,
    pub(super) end_s: Option<f64>,
}


/// Reads and checks id, name and times. Errors are (reason, detail, event time if known).
pub(super) fn check_core(obj: &Map<String, Value>) -> Result<Core, (&'static str, String, Option<i64>)> {
    let text = |key: &'static str| -> Result<String, (&'static str, String, Option<i64>)> {
        match obj.get(key) {
            None | Some(Value::Null) => Err(("missing_field", format!("no `{key}`"), None)),
            Some(Value::String(s)) if s.is_empty() => {
                Err(("missing_field", format!("empty `{key}`"), None))
            }
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(("bad_value", format!("`{key}` is not a string"), None)),
        }
    };
    let id = text("id")?;
    if id.chars().count() > MAX_ID_CHARS {
        return Err((
            "bad_value",
            format!("`id` longer than {MAX_ID_CHARS} characters"),
            None,
        ));
    }
    let name = text("name")?;
    let number = |key: &'static str| -> Result<Option<f64>, (&'static str, String, Option<i64>)> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(("bad_value", format!("`{key}` is not a number"), None)),
        }
    };
    let sane = |t: f64| t.is_finite() && (MIN_EPOCH_S..MAX_EPOCH_S).contains(&t);
    let start_s =
        number("start_time")?.ok_or(("missing_field", "no `start_time`".to_string(), None))?;
    if !sane(start_s) {
        return Err((
            "absurd_time",
            format!("start_time {start_s} is not between 2000 and 2100 (epoch seconds)"),
            None,
        ));
    }
    let time_ms = Some((start_s * 1000.0).floor() as i64);
    let in_progress = obj.get("in_progress").and_then(Value::as_bool) == Some(true);
    let end_s = if in_progress {
        None
    } else {
        let end = number("end_time")
            .map_err(|(r, d, _)| (r, d, time_ms))?
            .ok_or((
                "missing_field",
                "no `end_time` and not in_progress".to_string(),
                time_ms,
            ))?;
        if !sane(end) {
            return Err((
                "absurd_time",
                format!("end_time {end} is not between 2000 and 2100 (epoch seconds)"),
                time_ms,
            ));
        }
        if end < start_s {
            return Err((
                "end_before_start",
                format!("end_time {end} < start_time {start_s}"),
                time_ms,
            ));
        }
        if end - start_s > MAX_DURATION_S {
            return Err((
                "absurd_time",
                format!("lasts {:.0} s, over one day", end - start_s),
                time_ms,
            ));
        }
        Some(end)
    };
    Ok(Core {
        id,
        name,
        start_s,
        end_s,
    })
}

