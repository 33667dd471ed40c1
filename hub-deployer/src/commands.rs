//! What each subcommand does, over `config` and `plan`. Results go to the given writer (stdout in
//! the binary) as text or JSON; errors are returned, never printed here.

use std::io::Write;

use anyhow::Context;
use serde_json::json;

use crate::cli::{Cli, Command, ConfigCommand, Output};
use crate::config::{self, Config};
use crate::exit::CliError;
use crate::hubconfig;
use crate::plan::{self, Plan, PlanInputs, SecretSource};

/// Run the parsed command line with the given environment.
pub fn run(
    cli: &Cli,
    env: impl IntoIterator<Item = (String, String)>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match &cli.command {
        Command::Init { force } => init(cli, *force, out),
        Command::Config(c) => {
            let config = Config::load(&cli.config, env)?;
            match c {
                ConfigCommand::Check => check(cli, &config, out),
                ConfigCommand::RenderHub => render_hub(cli, &config, out),
                ConfigCommand::Plan => show_plan(cli, &config, out),
            }
        }
    }
}

fn emit(out: &mut dyn Write, text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")?;
    Ok(())
}

fn emit_json(out: &mut dyn Write, v: &serde_json::Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).context("cannot encode the result as JSON")?;
    emit(out, &(text + "\n"))
}

fn init(cli: &Cli, force: bool, out: &mut dyn Write) -> Result<(), CliError> {
    config::write_init(&cli.config, force).map_err(|e| match e.downcast::<CliError>() {
        Ok(cli_error) => cli_error,
        Err(other) => CliError::Other(other),
    })?;
    match cli.output {
        Output::Text => emit(
            out,
            &format!(
                "wrote {} (edit it, then `swarmhub config check`)\n",
                cli.config.display()
            ),
        ),
        Output::Json => emit_json(out, &json!({ "written": cli.config })),
    }
}

fn check(cli: &Cli, config: &Config, out: &mut dyn Write) -> Result<(), CliError> {
    match cli.output {
        Output::Text => {
            let text = toml::to_string_pretty(config).context("cannot print the settings")?;
            emit(
                out,
                &format!(
                    "# {}: valid; settings in effect (file + SWARMHUB_* environment)\n{text}",
                    cli.config.display()
                ),
            )
        }
        Output::Json => emit_json(
            out,
            &serde_json::to_value(config).context("cannot encode the settings")?,
        ),
    }
}

fn render_hub(cli: &Cli, config: &Config, out: &mut dyn Write) -> Result<(), CliError> {
    let text = hubconfig::render(&config.hub_settings()).map_err(config::from_hub_error)?;
    match cli.output {
        Output::Text => emit(out, &text),
        Output::Json => emit_json(
            out,
            &json!({ "target": plan::HUB_CONFIG_TARGET, "content": text }),
        ),
    }
}

fn show_plan(cli: &Cli, config: &Config, out: &mut dyn Write) -> Result<(), CliError> {
    let p = plan::plan(config, &PlanInputs::default())?;
    match cli.output {
        Output::Text => emit(out, &plan_text(&p)),
        Output::Json => emit_json(
            out,
            &serde_json::to_value(&p).context("cannot encode the plan")?,
        ),
    }
}

/// One line per object, with what decides where and how it runs.
fn plan_text(p: &Plan) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "network {} (overlay, attachable)\n",
        p.network.name
    ));
    for secret in &p.secrets {
        let how = match &secret.source {
            SecretSource::Generated { bytes } => {
                format!("generated ({bytes} random bytes, hex) when missing")
            }
            SecretSource::Input { from } => format!("from {from:?}"),
            SecretSource::Existing { flag } => format!("must exist (or give {flag})"),
        };
        s.push_str(&format!("secret {}: {how}\n", secret.name));
    }
    s.push_str(&format!(
        "config {} -> {}\n",
        p.hub_config.name.as_deref().unwrap_or_default(),
        plan::HUB_CONFIG_TARGET
    ));
    for svc in [&p.nfsd, &p.hub] {
        let task = svc.task_template.clone().unwrap_or_default();
        let c = task.container_spec.unwrap_or_default();
        let constraints = task
            .placement
            .and_then(|p| p.constraints)
            .unwrap_or_default()
            .join(", ");
        let ports: Vec<String> = svc
            .endpoint_spec
            .as_ref()
            .and_then(|e| e.ports.clone())
            .unwrap_or_default()
            .iter()
            .map(|p| {
                format!(
                    "{}->{}/host",
                    p.published_port.unwrap_or_default(),
                    p.target_port.unwrap_or_default()
                )
            })
            .collect();
        let mounts: Vec<String> = c
            .mounts
            .unwrap_or_default()
            .iter()
            .map(|m| {
                format!(
                    "{}:{}",
                    m.source.as_deref().unwrap_or_default(),
                    m.target.as_deref().unwrap_or_default()
                )
            })
            .collect();
        s.push_str(&format!(
            "service {}: image {}, on {}, ports {}, mounts {}\n",
            svc.name.as_deref().unwrap_or_default(),
            c.image.as_deref().unwrap_or_default(),
            constraints,
            ports.join(" "),
            mounts.join(" ")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn run_args(args: &[&str], env: &[(&str, &str)]) -> (Result<(), CliError>, String) {
        let cli = Cli::try_parse_from(args).unwrap();
        let mut out = Vec::new();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let r = run(&cli, env, &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn init_then_check_then_render_then_plan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swarmhub.toml");
        let p = path.to_str().unwrap();
        let (r, out) = run_args(&["swarmhub", "--config", p, "init"], &[]);
        r.unwrap();
        assert!(out.starts_with("wrote "), "{out}");
        let (r, _) = run_args(&["swarmhub", "--config", p, "init"], &[]);
        assert_eq!(r.unwrap_err().code(), 2);

        let (r, out) = run_args(&["swarmhub", "--config", p, "config", "check"], &[]);
        r.unwrap();
        let body = out.split_once('\n').unwrap().1;
        assert_eq!(toml::from_str::<Config>(body).unwrap(), Config::default());

        let (r, out) = run_args(
            &[
                "swarmhub", "--config", p, "--output", "json", "config", "check",
            ],
            &[("SWARMHUB_CLUSTER_HUB_PORT", "8443")],
        );
        r.unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["cluster"]["hub_port"], 8443);

        let (r, out) = run_args(&["swarmhub", "--config", p, "config", "render-hub"], &[]);
        r.unwrap();
        assert!(out.contains("SWARMHUB = {\n"), "{out}");

        let (r, out) = run_args(&["swarmhub", "--config", p, "config", "plan"], &[]);
        r.unwrap();
        assert!(out.contains("service swarmhub-nfsd: image swarmhub/nfsd:0.1.0, on node.labels.swarmhub.storage==true, ports 2049->2049/host 8049->8049/host, mounts /srv/swarmhub:/data"), "{out}");
        assert!(
            out.contains("secret swarmhub-hub-crypt-key: generated"),
            "{out}"
        );
        let (r, out) = run_args(
            &[
                "swarmhub", "--config", p, "--output", "json", "config", "plan",
            ],
            &[],
        );
        r.unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["nfsd"]["EndpointSpec"]["Mode"], "dnsrr");
    }

    #[test]
    fn bad_settings_exit_with_2() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swarmhub.toml");
        let p = path.to_str().unwrap();
        let (r, _) = run_args(&["swarmhub", "--config", p, "config", "check"], &[]);
        let e = r.unwrap_err();
        assert_eq!(e.code(), 2);
        assert!(e.to_string().contains("swarmhub init"), "{e}");
        std::fs::write(&path, "").unwrap();
        let (r, _) = run_args(
            &["swarmhub", "--config", p, "config", "check"],
            &[("SWARMHUB_IMAGES_HUB", "swarmhub/hub:latest")],
        );
        let e = r.unwrap_err();
        assert_eq!(e.code(), 2);
        assert!(e.to_string().starts_with("setting images.hub: "), "{e}");
    }
}
