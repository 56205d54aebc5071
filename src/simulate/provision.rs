//! Provisioning the application in the endpoint: the IAM role, the four functions (with a
//! stored-zip stand-in for their code), a version per environment and the aliases on them.

use super::*;

/// The role name `simulate` creates when no `--role-arn` is given.
pub const ROLE_NAME: &str = "atlas-engine-simulated-lambda-role";

pub(super) fn code_of<E: aws_sdk_lambda::error::ProvideErrorMetadata>(e: &E) -> &str {
    e.code().unwrap_or("")
}

/// Retries `f` while AWS says the resource is not ready yet (a role still propagating, a
/// function still being created or updated): real accounts need it, moto never does.
async fn patiently<T, E, F, Fut>(what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut waited = Duration::ZERO;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if matches!(code_of(&e), "ResourceConflictException" | "InvalidParameterValueException") && waited < Duration::from_secs(90) => {
                tracing::info!(what, code = code_of(&e), "Not ready yet; retrying in 3 s.");
                tokio::time::sleep(Duration::from_secs(3)).await;
                waited += Duration::from_secs(3);
            }
            Err(e) => return Err(anyhow::Error::new(e).context(what.to_string())),
        }
    }
}

/// A tiny `lambda_function.py` in a zip (stored, not deflated: no zip crate needed).
pub fn function_zip(function: &FunctionSpec, env: &str) -> Vec<u8> {
    let body = format!(
        "# Stand-in for the Atlas Engine's {name} ({env}), deployed by `latency-sentinel simulate`.\n\
         # The simulator writes this function's logs and traces itself; invoking it does nothing.\n\
         import json\n\n\ndef lambda_handler(event, context):\n    print(json.dumps({{\"level\": \"INFO\", \"event_type\": \"START\", \"function_name\": \"{abbr}\", \"message\": \"Function started\"}}))\n    return {{\"statusCode\": 200}}\n",
        name = function.name,
        abbr = function.abbr,
    );
    stored_zip("lambda_function.py", body.as_bytes())
}

/// A one-file zip archive with the file stored uncompressed.
pub fn stored_zip(name: &str, data: &[u8]) -> Vec<u8> {
    let crc = crc32fast::hash(data);
    let (n, len) = (name.len() as u16, data.len() as u32);
    // 1980-01-01 00:00: a fixed date keeps the archive (and the code hash) deterministic.
    let (time, date) = (0u16, (1u16 << 5) | 1); // DOS date: (year - 1980) << 9 | month << 5 | day
    let mut z = Vec::new();
    let le16 = |z: &mut Vec<u8>, v: u16| z.extend_from_slice(&v.to_le_bytes());
    let le32 = |z: &mut Vec<u8>, v: u32| z.extend_from_slice(&v.to_le_bytes());
    le32(&mut z, 0x0403_4b50);
    for v in [20, 0, 0, time, date] {
        le16(&mut z, v);
    }
    for v in [crc, len, len] {
        le32(&mut z, v);
    }
    le16(&mut z, n);
    le16(&mut z, 0);
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(data);
    let central = z.len() as u32;
    le32(&mut z, 0x0201_4b50);
    for v in [20, 20, 0, 0, time, date] {
        le16(&mut z, v);
    }
    for v in [crc, len, len] {
        le32(&mut z, v);
    }
    for v in [n, 0, 0, 0, 0] {
        le16(&mut z, v);
    }
    le32(&mut z, 0o100644 << 16);
    le32(&mut z, 0);
    z.extend_from_slice(name.as_bytes());
    let central_len = z.len() as u32 - central;
    le32(&mut z, 0x0605_4b50);
    for v in [0, 0, 1, 1] {
        le16(&mut z, v);
    }
    le32(&mut z, central_len);
    le32(&mut z, central);
    le16(&mut z, 0);
    z
}

/// Creates (or finds) the role, the four functions, a published version per environment and
/// the aliases pointing at them. Running it again reuses what exists.
pub(super) async fn deploy(sdk: &aws_config::SdkConfig, region: &str, role_arn: Option<String>, envs: &[String]) -> anyhow::Result<Deployment> {
    use anyhow::Context as _;
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::types::{FunctionCode, Runtime, TracingConfig, TracingMode};
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let role = match role_arn {
        Some(r) => r,
        None => ensure_role(&aws_sdk_iam::Client::new(sdk)).await?,
    };
    let account = role.split(':').nth(4).filter(|a| !a.is_empty()).unwrap_or("123456789012").to_string();
    let mut versions = BTreeMap::new();
    for f in &ATLAS {
        match lambda.get_function().function_name(f.name).send().await {
            Ok(_) => {}
            Err(e) if code_of(&e) == "ResourceNotFoundException" => {
                patiently(&format!("CreateFunction {}", f.name), || {
                    lambda
                        .create_function()
                        .function_name(f.name)
                        .runtime(Runtime::Python312)
                        .role(&role)
                        .handler("lambda_function.lambda_handler")
                        .code(FunctionCode::builder().zip_file(Blob::new(function_zip(f, "initial"))).build())
                        .memory_size(f.memory_mb as i32)
                        .timeout(f.timeout_s as i32)
                        .tracing_config(TracingConfig::builder().mode(TracingMode::Active).build())
                        .description("Atlas Engine stand-in written by latency-sentinel simulate")
                        .send()
                })
                .await?;
                tracing::info!(function = f.name, "Created the function.");
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("GetFunction {}", f.name))),
        }
        for env in envs {
            let version = match lambda.get_alias().function_name(f.name).name(env).send().await {
                Ok(a) => a.function_version().unwrap_or("$LATEST").to_string(),
                Err(e) if code_of(&e) == "ResourceNotFoundException" => {
                    patiently(&format!("UpdateFunctionCode {}", f.name), || {
                        lambda.update_function_code().function_name(f.name).zip_file(Blob::new(function_zip(f, env))).send()
                    })
                    .await?;
                    let published = patiently(&format!("PublishVersion {}", f.name), || {
                        lambda.publish_version().function_name(f.name).description(format!("{env} build")).send()
                    })
                    .await?;
                    let v = published.version().unwrap_or("$LATEST").to_string();
                    lambda
                        .create_alias()
                        .function_name(f.name)
                        .name(env)
                        .function_version(&v)
                        .send()
                        .await
                        .with_context(|| format!("CreateAlias {}:{env}", f.name))?;
                    tracing::info!(function = f.name, env = %env, version = %v, "Published a version and pointed the alias at it.");
                    v
                }
                Err(e) => return Err(anyhow::Error::new(e).context(format!("GetAlias {}:{env}", f.name))),
            };
            versions.insert((f.name.to_string(), env.clone()), version);
        }
    }
    Ok(Deployment { region: region.to_string(), account, versions })
}

async fn ensure_role(iam: &aws_sdk_iam::Client) -> anyhow::Result<String> {
    use anyhow::Context as _;
    match iam.get_role().role_name(ROLE_NAME).send().await {
        Ok(r) => return Ok(r.role().map(|r| r.arn().to_string()).unwrap_or_default()),
        Err(e) if code_of(&e) == "NoSuchEntity" => {}
        Err(e) => return Err(anyhow::Error::new(e).context(format!("GetRole {ROLE_NAME}"))),
    }
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let r = iam
        .create_role()
        .role_name(ROLE_NAME)
        .assume_role_policy_document(trust.to_string())
        .description("Execution role of the Atlas Engine stand-ins created by latency-sentinel simulate")
        .send()
        .await
        .with_context(|| format!("CreateRole {ROLE_NAME}"))?;
    Ok(r.role().map(|r| r.arn().to_string()).unwrap_or_default())
}
