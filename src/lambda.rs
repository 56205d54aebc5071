//! Lambda's names, as every source writes them: log stream names
//! (`YYYY/MM/DD/[<version>]<id>`, with the function in shared custom groups), log group
//! names (`/aws/lambda/<function>`), function ARNs and references with their qualifier (a
//! version or an alias). Pure; one place for what parsers and attribution all read.

/// The parts of a Lambda log stream name.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamName {
    /// `YYYY/MM/DD` as written.
    pub date: String,
    /// Present in custom log groups' streams (`YYYY/MM/DD/<fn>[<version>]<id>`).
    pub function: Option<String>,
    /// The resolved version: `$LATEST` or a number. Never an alias.
    pub version: String,
    /// The execution environment id (hex).
    pub instance_id: String,
}

/// Parses `YYYY/MM/DD/[<version>]<hex>` and `YYYY/MM/DD/<fn>[<version>]<hex>`.
pub fn parse_stream_name(stream: &str) -> Option<StreamName> {
    let date = stream.get(..10)?;
    let d = date.as_bytes();
    let digits = |r: std::ops::Range<usize>| d[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && d[4] == b'/' && digits(5..7) && d[7] == b'/' && digits(8..10)) {
        return None;
    }
    let rest = stream.get(10..)?.strip_prefix('/')?;
    let open = rest.find('[')?;
    let after_open = &rest[open + 1..];
    let close = after_open.find(']')?;
    let version = &after_open[..close];
    let instance_id = &after_open[close + 1..];
    if version.is_empty()
        || instance_id.is_empty()
        || !instance_id.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let function = &rest[..open];
    Some(StreamName {
        date: date.to_owned(),
        function: (!function.is_empty()).then(|| function.to_owned()),
        version: version.to_owned(),
        instance_id: instance_id.to_owned(),
    })
}

/// The function a log event belongs to: the one its stream names (custom log groups shared
/// by several functions name it: `YYYY/MM/DD/<fn>[<version>]<id>`), else its group's.
pub fn function_of(log_group: &str, stream: &str) -> String {
    parse_stream_name(stream).and_then(|n| n.function).unwrap_or_else(|| function_from_log_group(log_group))
}

/// `/aws/lambda/<name>` → `name`; any other group name is returned as is.
pub fn function_from_log_group(group: &str) -> String {
    match group.strip_prefix("/aws/lambda/") {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => group.to_owned(),
    }
}

/// The qualifier of a function ARN (`...:function:name:Dev` → `Dev`), if it has one.
pub fn arn_qualifier(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    if parts.next() != Some("arn") {
        return None;
    }
    // arn : partition : lambda : region : account : function : name : qualifier
    let rest: Vec<&str> = parts.collect();
    match rest.as_slice() {
        [_, "lambda", _, _, "function", _, qualifier] if !qualifier.is_empty() => Some(qualifier),
        _ => None,
    }
}

/// A published version number or `$LATEST` (an alias is anything else).
pub fn is_version(q: &str) -> bool {
    q == "$LATEST" || (!q.is_empty() && q.bytes().all(|b| b.is_ascii_digit()))
}

/// `(name, qualifier)` from a Lambda function ARN
/// (`arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`).
pub fn lambda_arn(arn: &str) -> Option<(String, Option<String>)> {
    if !arn.starts_with("arn:") {
        return None;
    }
    function_ref(arn)
}

/// `(name, qualifier)` from any way of naming a function: `NAME`, `NAME:QUAL`,
/// `ACCOUNT:function:NAME[:QUAL]` or a full ARN.
pub fn function_ref(s: &str) -> Option<(String, Option<String>)> {
    let rest = match s.find(":function:") {
        Some(pos) => &s[pos + ":function:".len()..],
        None if s.starts_with("arn:") => return None,
        None => s,
    };
    let mut parts = rest.split(':');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let qualifier = parts.next().filter(|q| !q.is_empty()).map(str::to_string);
    Some((name.to_string(), qualifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: &str = "/aws/lambda/GenerateDynamicScenarioHandler";
    const STREAM: &str = "2026/03/02/[7]d6c10ebbd9cb48dba94a7d9b874b49bb";

    #[test]
    fn stream_names() {
        assert_eq!(
            parse_stream_name("2019/09/25/[$LATEST]d6c10ebbd9cb48dba94a7d9b874b49bb"),
            Some(StreamName {
                date: "2019/09/25".into(),
                function: None,
                version: "$LATEST".into(),
                instance_id: "d6c10ebbd9cb48dba94a7d9b874b49bb".into()
            })
        );
        assert_eq!(
            parse_stream_name(
                "2026/10/08/tenner-notifier[$LATEST]22be53a8cfde4e68b844f8ec293b2543"
            ),
            Some(StreamName {
                date: "2026/10/08".into(),
                function: Some("tenner-notifier".into()),
                version: "$LATEST".into(),
                instance_id: "22be53a8cfde4e68b844f8ec293b2543".into()
            })
        );
        assert_eq!(
            parse_stream_name(STREAM).map(|n| n.version),
            Some("7".into())
        );
        for bad in [
            "",
            "2019/09/25",
            "2019/09/25/",
            "2019/09/25/[]abc",
            "2019/09/25/[$LATEST]",
            "2019/09/25/[$LATEST]xyz",
            "2019/09/25/[$LATEST",
            "2019-09-25/[$LATEST]abc",
            "20é9/09/25/[1]abc",
            "my-stream",
        ] {
            assert_eq!(parse_stream_name(bad), None, "{bad}");
        }
        assert_eq!(
            function_from_log_group(GROUP),
            "GenerateDynamicScenarioHandler"
        );
        assert_eq!(function_from_log_group("/custom/shared"), "/custom/shared");
        assert_eq!(function_from_log_group("/aws/lambda/"), "/aws/lambda/");
        assert_eq!(
            arn_qualifier("arn:aws:lambda:us-east-1:1:function:f:Dev"),
            Some("Dev")
        );
        assert_eq!(
            arn_qualifier("arn:aws:lambda:us-east-1:1:function:f:$LATEST"),
            Some("$LATEST")
        );
        assert_eq!(arn_qualifier("arn:aws:lambda:us-east-1:1:function:f"), None);
        assert_eq!(
            arn_qualifier("arn:aws:lambda:us-east-1:1:function:f:"),
            None
        );
        assert_eq!(arn_qualifier("nope"), None);
    }

    #[test]
    fn function_refs() {
        type Case<'a> = (&'a str, Option<(&'a str, Option<&'a str>)>);
        let cases: &[Case] = &[
            (
                "arn:aws:lambda:us-west-2:123456789012:function:GenerateDynamicScenarioHandler:Dev",
                Some(("GenerateDynamicScenarioHandler", Some("Dev"))),
            ),
            (
                "arn:aws:lambda:us-east-1:263792328682:function:todo-list-app-dev-postTask",
                Some(("todo-list-app-dev-postTask", None)),
            ),
            (
                "arn:aws:lambda:us-east-2:0123456789012:function:us-east-1.LicensePlateZone-CloudFront-OriginRequest:2",
                Some((
                    "us-east-1.LicensePlateZone-CloudFront-OriginRequest",
                    Some("2"),
                )),
            ),
            (
                "arn:aws-cn:lambda:cn-north-1:123456789012:function:f:$LATEST",
                Some(("f", Some("$LATEST"))),
            ),
            ("...", None),
            ("arn:aws:states:us-west-2:1:execution:x", None),
            ("arn:aws:lambda:us-west-2:1:function:", None),
        ];
        for (input, want) in cases {
            let got = lambda_arn(input);
            let want = want.map(|(n, q)| (n.to_string(), q.map(str::to_string)));
            assert_eq!(got, want, "{input}");
        }
        assert_eq!(
            function_ref("GenerateDynamicScenarioHandler:Dev"),
            Some(("GenerateDynamicScenarioHandler".into(), Some("Dev".into())))
        );
        assert_eq!(
            function_ref("UpdateLeadHandler"),
            Some(("UpdateLeadHandler".into(), None))
        );
        assert_eq!(
            function_ref("123456789012:function:f:PROD"),
            Some(("f".into(), Some("PROD".into())))
        );
        assert!(is_version("12") && is_version("$LATEST") && !is_version("PROD"));
    }
}
