//! What each subcommand does: dispatch to `config`/`plan` (no daemon needed), the lifecycle,
//! the plugin, status, doctor, images and volumes, and the job and service sides that run in the
//! swarmhub image (the plugin's node side, the volume API job, the Docker gate). Results go to the given writer (stdout in
//! the binary) as text or JSON; progress goes to stderr; errors are returned, never printed here.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;

use crate::cli::{
    ApiCommand, BuildArgs, Cli, Command, ConfigCommand, DemoCommand, DeployArgs, DockerGateArgs,
    FirewallAction, HubCommand, NfsCommand, NodeInstallArgs, NotebooksCommand, Output,
    PluginCommand, TlsCommand, VolumeCommand,
};
use crate::demo;
use crate::docker::cluster::Cluster;
use crate::exit::CliError;
use crate::lifecycle::images;
use crate::lifecycle::plugin::{self, NodeInstall};
use crate::lifecycle::prepare;
use crate::lifecycle::registry;
use crate::lifecycle::volume::{self, ApiAction, ApiResult};
use crate::lifecycle::{self, Ctx, Part};
use crate::names;
use crate::node::{firewall, mounts};
use crate::plan::{self, Plan, PlanInputs, SecretInput, SecretSource};
use crate::progress::Progress;
use crate::settings::hub;
use crate::settings::tls;
use crate::settings::{self, Config};
use crate::steps::Step;

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
        // the job sides run in the swarmhub image, which has no settings file
        Command::Plugin(PluginCommand::NodeInstall(args)) => {
            let NodeInstallArgs {
                alias,
                bundle,
                remote,
                pull,
                wait_volumes,
                registry_username,
                registry_secret_file,
                registry_docker_config,
                settings,
                token_file,
                state_dir,
                firewall_root,
                firewall_ports,
            } = args.as_ref();
            let login = registry::node_login(
                remote.iter().chain(pull),
                registry_username.as_deref(),
                registry_secret_file.as_deref(),
                registry_docker_config.as_deref(),
            )?;
            let req = NodeInstall {
                alias: alias.clone(),
                bundle: bundle.clone(),
                remote: remote.clone(),
                login,
                docker_host: String::new(),
                pull: pull.clone(),
                wait_volumes: std::time::Duration::from_secs(*wait_volumes),
                settings: settings.clone(),
                token_file: token_file.clone(),
                state_dir: state_dir.clone(),
                firewall: firewall_root.as_ref().map(|root| plugin::FirewallStep {
                    root: root.clone(),
                    ports: firewall_ports.clone(),
                }),
            };
            runtime()?.block_on(async {
                let c = Cluster::reach(&settings::TimeoutsConfig::default()).await?;
                let req = NodeInstall {
                    docker_host: c.host.clone(),
                    ..req
                };
                let r = plugin::node_install(c.engine(), &req).await?;
                emit(out, &(plugin::result_line(&r) + "\n"))
            })
        }
        Command::Plugin(PluginCommand::NodeMounts { proc }) => runtime()?.block_on(async {
            let c = Cluster::reach(&settings::TimeoutsConfig::default()).await?;
            let report = crate::inspect::mounts::node_side(c.engine(), proc, mounts::PROBE_TIMEOUT)
                .await
                .map_err(|e| {
                    anyhow::anyhow!("cannot list this node's containers: {}", e.message())
                })?;
            let json = serde_json::to_string(&report).map_err(anyhow::Error::from)?;
            emit(out, &format!("{}{json}\n", mounts::RESULT_PREFIX))
        }),
        Command::Plugin(PluginCommand::NodeFirewall {
            root,
            ports,
            action,
        }) => {
            let action = match action {
                FirewallAction::Apply => firewall::Action::Apply,
                FirewallAction::Check => firewall::Action::Check,
                FirewallAction::Remove => firewall::Action::Remove,
            };
            if ports.is_empty() && action != firewall::Action::Remove {
                return Err(CliError::Usage(
                    "plugin node-firewall needs nfsd's ports (--port P, repeatable)".into(),
                ));
            }
            let r = firewall::node_firewall(root, ports, action)?;
            emit(out, &(firewall::result_line(&r) + "\n"))
        }
        Command::Volume(VolumeCommand::Api {
            server,
            token_file,
            action,
        }) => {
            let action = match action {
                ApiCommand::List => ApiAction::List,
                ApiCommand::Delete { name, purge } => ApiAction::Delete {
                    name: name.clone(),
                    purge: *purge,
                },
                ApiCommand::ShareDir {
                    share,
                    name,
                    user,
                    mode,
                } => ApiAction::ShareDir {
                    share: share.clone(),
                    name: name.clone(),
                    user: user.clone(),
                    mode: u32::from_str_radix(mode, 8).map_err(|e| {
                        anyhow::anyhow!("--mode {mode:?} is not an octal mode: {e}")
                    })?,
                },
                ApiCommand::Create { volumes } => ApiAction::Create {
                    volumes: volumes
                        .iter()
                        .map(|v| volume::VolumeSpec::from_arg(v).map_err(CliError::Usage))
                        .collect::<Result<_, _>>()?,
                },
            };
            runtime()?.block_on(async {
                let results = volume::node_api(server, token_file, &action).await;
                for r in &results {
                    emit(out, &(volume::result_line(r) + "\n"))?;
                }
                match results.into_iter().find_map(|r| match r {
                    ApiResult::Failed { error } => Some(error),
                    _ => None,
                }) {
                    Some(error) => Err(anyhow::anyhow!("nfsd: {error}").into()),
                    None => Ok(()),
                }
            })
        }
        Command::Tls(TlsCommand::SelfSigned { names }) => {
            let mut config = Config::load(&cli.config, env)?;
            config.tls.names.extend(names.iter().cloned());
            runtime()?.block_on(tls_self_signed(cli, &config, out))
        }
        Command::Build(b) | Command::Hub(HubCommand::Build(b)) => {
            let config = Config::load(&cli.config, env)?;
            runtime()?.block_on(build_here(cli, &config, b, out))
        }
        Command::Push(b) | Command::Hub(HubCommand::Push(b)) => {
            let config = Config::load(&cli.config, env)?;
            runtime()?.block_on(push_here(cli, &config, b, out))
        }
        // the gate service's process: its rules come in its environment, not from a file
        Command::DockerGate(args) => docker_gate(args),
        // the demo has settings of its own (in its directory)
        Command::Demo(d) => runtime()?.block_on(demo_command(cli, d, out)),
        _ => {
            let config = Config::load(&cli.config, env)?;
            runtime()?.block_on(on_swarm(cli, &config, out))
        }
    }
}

async fn demo_command(cli: &Cli, d: &DemoCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let progress = progress_for(cli);
    match d {
        DemoCommand::Up(a) => {
            let opts = demo::DemoOptions {
                dir: a.dir.dir.clone(),
                hub_port: a.hub_port,
                hub_redirect_port: a.hub_redirect_port,
                ldap_port: a.ldap_port,
            };
            let up = demo::up(&opts, progress).await?;
            match cli.output {
                Output::Text => {
                    emit_steps(cli, &up.steps, out)?;
                    let wrapper = std::env::var("SWARMHUB_DEMO_COMMAND").ok();
                    emit(out, &up.summary(wrapper.as_deref()))
                }
                Output::Json => emit_json(out, &json!(up)),
            }
        }
        DemoCommand::Down(a) => {
            let opts = demo::DemoOptions {
                dir: a.dir.clone(),
                hub_port: 0,
                hub_redirect_port: 0,
                ldap_port: 0,
            };
            let steps = demo::down(&opts, progress).await?;
            emit_steps(cli, &steps, out)
        }
    }
}

/// `tls self-signed`: the set in tls.dir for the public host, the nodes' addresses (asked of the
/// swarm when this is a manager; without one, `run` adds them later) and the fixed names.
async fn tls_self_signed(cli: &Cli, cfg: &Config, out: &mut dyn Write) -> Result<(), CliError> {
    let (addrs, note) = match Cluster::connect(cfg).await {
        Ok(c) => match c.nodes().await {
            Ok(nodes) => (nodes.into_iter().map(|n| n.addr).collect(), None),
            Err(e) => (Vec::new(), Some(format!("cannot list the nodes ({e:#})"))),
        },
        Err(e) => {
            let why = e.to_string();
            let first = why.lines().next().unwrap_or_default().to_string();
            (Vec::new(), Some(format!("no swarm manager here ({first})")))
        }
    };
    let names = tls::self_signed_names(cfg, &addrs);
    let made = tls::ensure_self_signed(
        std::path::Path::new(&cfg.tls.dir),
        &names,
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|e| settings::ConfigError::Invalid {
        key: "tls.dir".into(),
        reason: e.to_string(),
    })?;
    if cli.output == Output::Json {
        return emit_json(
            out,
            &serde_json::to_value(&made).context("cannot encode the result")?,
        );
    }
    let mut text = String::new();
    for m in &made.changes {
        text.push_str(&format!("{}: {}\n", m.path.display(), m.why));
    }
    if let Some(note) = note {
        text.push_str(&format!(
            "note: {note}: the certificate names {}; `swarmhub run` on a manager adds the nodes' addresses\n",
            made.names.join(", ")
        ));
    }
    text.push_str(&tls::trust_hint(&made.ca_cert, &cfg.cluster.public_url));
    text.push_str(&format!(
        "serve it: set mode = \"self-signed\" under [tls] in {} (or mode = \"files\", cert_file = \"{}\", key_file = \"{}\"), then: swarmhub --config {} run\n",
        cli.config.display(),
        made.cert.display(),
        made.key.display(),
        cli.config.display()
    ));
    emit(out, &text)
}

/// `docker-gate`: the options from the flags, the rules parsed from `--rules` /
/// [`swarmhub_docker_gate::RULES_ENV`]; a missing or bad value is a usage error naming that
/// variable.
fn gate_options(args: &DockerGateArgs) -> Result<swarmhub_docker_gate::GateOptions, CliError> {
    let var = swarmhub_docker_gate::RULES_ENV;
    let json = args.rules.as_deref().ok_or_else(|| {
        CliError::Usage(format!(
            "the gate's rules are missing: {var} (or --rules) must hold them as JSON; `swarmhub run` sets it on the gate service"
        ))
    })?;
    let rules = swarmhub_docker_gate::GateRules::from_json(json).map_err(|e| {
        CliError::Usage(format!("{var} does not hold the gate's rules as JSON: {e}"))
    })?;
    Ok(swarmhub_docker_gate::GateOptions {
        listen: args.listen.clone(),
        docker: args.docker.clone(),
        rules,
    })
}

/// Run the gate until SIGTERM or SIGINT, logging (every refusal included) to stderr, which
/// `docker service logs` shows: plain lines at info unless `RUST_LOG` says otherwise.
fn docker_gate(args: &DockerGateArgs) -> Result<(), CliError> {
    let opts = gate_options(args)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // a subscriber set before (a test harness) stays: the gate's events go there then
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let listen = opts.listen.display().to_string();
    runtime()?
        .block_on(swarmhub_docker_gate::serve(opts))
        .with_context(|| format!("the Docker gate on {listen}"))?;
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?)
}

fn inputs(cli: &Cli, args: &DeployArgs) -> PlanInputs {
    PlanInputs {
        registry_password: cli.registry_password_file.clone().map(SecretInput::File),
        ldap_password: args.ldap_password_file.as_ref().map(|p| {
            if p.as_os_str() == "-" {
                SecretInput::Stdin
            } else {
                SecretInput::File(p.clone())
            }
        }),
        // filled in from the swarm by the lifecycle commands that deploy nfsd
        node_addrs: Vec::new(),
        // read (or made) by `run` once the nodes' addresses are known
        tls: None,
    }
}

/// Commands that need a swarm manager.
async fn on_swarm(cli: &Cli, cfg: &Config, out: &mut dyn Write) -> Result<(), CliError> {
    let progress = progress_for(cli);
    if let Command::Doctor { ldap_password_file } = &cli.command {
        return doctor(cli, cfg, ldap_password_file.as_ref(), out).await;
    }
    let mut cluster = Cluster::connect(cfg).await?;
    cluster.registry_login = registry::manager_login(cfg, cli.registry_password_file.as_deref())?;
    // what is deployed is pinned to the registry's digests (stop and remove need no registry)
    let pinned = match &cli.command {
        Command::Stop
        | Command::Remove
        | Command::Start
        | Command::Nfs(NfsCommand::Stop | NfsCommand::Remove | NfsCommand::Start)
        | Command::Hub(HubCommand::Stop | HubCommand::Remove | HubCommand::Start)
        | Command::Rebuild { .. } => cfg.clone(),
        // status shows the cluster even when the registry cannot say what is deployed
        Command::Status => match registry::pin(&cluster, cfg).await {
            Ok(p) => p,
            Err(e) => {
                progress.say(format!(
                    "cannot tell the deployed version from the registry, so CURRENT is unknown: {}",
                    e.to_string().replace('\n', " ")
                ));
                cfg.clone()
            }
        },
        _ => registry::pin(&cluster, cfg).await?,
    };
    let cfg = &pinned;
    let no_args = DeployArgs::default();
    let deploy_args = match &cli.command {
        Command::Run(a) | Command::Rerun(a) => a,
        Command::Nfs(NfsCommand::Run(a)) | Command::Hub(HubCommand::Run(a)) => a,
        _ => &no_args,
    };
    let ctx = Ctx {
        cluster: &cluster,
        cfg,
        inputs: inputs(cli, deploy_args),
        progress,
    };
    // not locked here: commands that ask (volume delete) or read a secret lock it themselves
    let mut stdin = std::io::stdin();
    let steps = match &cli.command {
        Command::Run(_) => lifecycle::run(&ctx, Part::All, &mut stdin).await?,
        Command::Start => lifecycle::start(&ctx, Part::All).await?,
        Command::Stop => lifecycle::stop(&ctx, Part::All).await?,
        Command::Remove => lifecycle::remove(&ctx, Part::All).await?,
        Command::Restart => lifecycle::restart(&ctx, Part::All).await?,
        Command::Rerun(_) => lifecycle::rerun(&ctx, Part::All, &mut stdin).await?,
        Command::Rebuild { build, drain } => rebuild(&ctx, build, *drain, &mut stdin).await?,
        Command::Nfs(n) => match n {
            NfsCommand::Run(_) => lifecycle::run(&ctx, Part::Nfs, &mut stdin).await?,
            NfsCommand::Config => return nfs_config(cli, &ctx, out).await,
            NfsCommand::Start => lifecycle::start(&ctx, Part::Nfs).await?,
            NfsCommand::Stop => lifecycle::stop(&ctx, Part::Nfs).await?,
            NfsCommand::Remove => lifecycle::remove(&ctx, Part::Nfs).await?,
            NfsCommand::Restart => lifecycle::restart(&ctx, Part::Nfs).await?,
        },
        Command::Hub(h) => match h {
            HubCommand::Run(_) => lifecycle::run(&ctx, Part::Hub, &mut stdin).await?,
            HubCommand::Start => lifecycle::start(&ctx, Part::Hub).await?,
            HubCommand::Stop => lifecycle::stop(&ctx, Part::Hub).await?,
            HubCommand::Remove => lifecycle::remove(&ctx, Part::Hub).await?,
            HubCommand::Restart => lifecycle::restart(&ctx, Part::Hub).await?,
            HubCommand::Build(_) | HubCommand::Push(_) => {
                unreachable!("handled without a swarm")
            }
        },
        Command::Plugin(p) => match p {
            PluginCommand::Rollout { drain } => lifecycle::rollout(&ctx, *drain).await?,
            PluginCommand::Install {
                bundle,
                server,
                token_file,
            } => install_here(&ctx, bundle, server.as_deref(), token_file.clone()).await?,
            PluginCommand::NodeInstall(_)
            | PluginCommand::NodeFirewall { .. }
            | PluginCommand::NodeMounts { .. } => {
                unreachable!("handled without a swarm")
            }
        },
        Command::Notebooks(NotebooksCommand::Restart { dead_mounts, users }) => {
            let sel = lifecycle::notebooks::Selection {
                dead_mounts: *dead_mounts,
                users: users.clone(),
            };
            lifecycle::notebooks::restart(&ctx, &sel).await?
        }
        Command::Status => return status(cli, &ctx, out).await,
        Command::Volume(v) => return volumes(cli, &ctx, v, out).await,
        Command::Init { .. }
        | Command::Build(_)
        | Command::Push(_)
        | Command::Config(_)
        | Command::Doctor { .. }
        | Command::Demo(_)
        | Command::Tls(_)
        | Command::DockerGate(_) => {
            unreachable!("handled without a swarm")
        }
    };
    emit_steps(cli, &steps, out)
}

fn emit_steps(cli: &Cli, steps: &[Step], out: &mut dyn Write) -> Result<(), CliError> {
    match cli.output {
        Output::Text => {
            let mut text = String::new();
            for s in steps {
                text.push_str(&s.line());
                text.push('\n');
            }
            emit(out, &text)
        }
        Output::Json => emit_json(out, &json!({ "steps": steps })),
    }
}

/// The dockerd that builds and pushes: `--build-host`, or the one the CLI talks to.
async fn build_engine(cfg: &Config, b: &BuildArgs) -> Result<Cluster, CliError> {
    match &b.build_host {
        Some(h) => Cluster::reach_at(h, &cfg.timeouts).await,
        None => Cluster::reach(&cfg.timeouts).await,
    }
}

fn progress_for(cli: &Cli) -> Progress {
    if cli.output == Output::Json {
        Progress::quiet()
    } else {
        Progress::stderr()
    }
}

/// The images `build`/`push` are about: every one, or the hub's for `hub build|push`.
fn build_set(cli: &Cli, cfg: &Config) -> Vec<images::ImageTarget> {
    match cli.command {
        Command::Hub(_) => images::hub_images(cfg),
        _ => images::all_images(cfg),
    }
}

/// `build`, `hub build`: no swarm needed.
async fn build_here(
    cli: &Cli,
    cfg: &Config,
    b: &BuildArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let engine = build_engine(cfg, b).await?;
    let steps = images::build(
        engine.engine(),
        &progress_for(cli),
        &b.options(),
        &build_set(cli, cfg),
    )
    .await?;
    emit_steps(cli, &steps, out)
}

/// `push` (every image and the plugin), `hub push` (the hub's images): no swarm needed.
async fn push_here(
    cli: &Cli,
    cfg: &Config,
    b: &BuildArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let engine = build_engine(cfg, b).await?;
    let login = registry::manager_login(cfg, cli.registry_password_file.as_deref())?;
    let progress = progress_for(cli);
    let mut steps = images::push(
        engine.engine(),
        &progress,
        cfg,
        login.as_ref(),
        &build_set(cli, cfg),
    )
    .await?;
    if matches!(cli.command, Command::Push(_)) {
        steps.push(registry::push_plugin(&engine, cfg, login.as_ref()).await?);
    }
    emit_steps(cli, &steps, out)
}

/// `rebuild`: build every image, push them and the plugin (with a registry), then deploy the
/// new version: nfsd and the hub first, the plugin node by node (see [`lifecycle::upgrade`]).
async fn rebuild(
    ctx: &Ctx<'_>,
    b: &BuildArgs,
    drain: bool,
    stdin: &mut dyn std::io::Read,
) -> Result<Vec<Step>, CliError> {
    let all = images::all_images(ctx.cfg);
    let opts = b.options();
    let builder = match &b.build_host {
        Some(_) => Some(build_engine(ctx.cfg, b).await?),
        None => None,
    };
    let on: &crate::docker::cluster::Swarm = match &builder {
        Some(b) => b,
        None => ctx.cluster,
    };
    let engine = on.engine();
    let mut steps = images::build(engine, &ctx.progress, &opts, &all).await?;
    if ctx.cfg.registry.address.is_some() {
        let login = ctx.cluster.registry_login.as_ref();
        steps.extend(images::push(engine, &ctx.progress, ctx.cfg, login, &all).await?);
        steps.push(registry::push_plugin(on, ctx.cfg, login).await?);
    }
    let pinned = registry::pin(ctx.cluster, ctx.cfg).await?;
    let deploy = Ctx {
        cluster: ctx.cluster,
        cfg: &pinned,
        inputs: ctx.inputs.clone(),
        progress: ctx.progress,
    };
    steps.extend(lifecycle::upgrade(&deploy, drain, stdin).await?);
    Ok(steps)
}

/// `plugin install`: this node only.
async fn install_here(
    ctx: &Ctx<'_>,
    bundle: &std::path::Path,
    server: Option<&str>,
    token_file: Option<PathBuf>,
) -> Result<Vec<Step>, CliError> {
    let server = match server {
        Some(s) => s.to_string(),
        None => {
            ctx.cluster
                .storage_node(&ctx.cfg.cluster.storage_node_label)
                .await?
                .addr
        }
    };
    let req = NodeInstall {
        alias: names::PLUGIN_ALIAS.into(),
        bundle: bundle.to_path_buf(),
        remote: None,
        login: None,
        docker_host: ctx.cluster.host.clone(),
        pull: Vec::new(),
        wait_volumes: std::time::Duration::ZERO,
        settings: plan::plugin_settings(ctx.cfg, &server),
        token_file,
        state_dir: Some(PathBuf::from(&ctx.cfg.cluster.plugin_state_dir)),
        // the guard of nfsd's ports needs the node's iptables, which the rollout job reaches;
        // doctor's firewall check flags a node that only got `plugin install`
        firewall: None,
    };
    let r = plugin::node_install(ctx.cluster.engine(), &req).await?;
    let outcome = plugin::NodeOutcome {
        node: r.node.clone(),
        result: Some(r),
        error: None,
    };
    Ok(plugin::outcome_steps(&[outcome]).0)
}

/// `nfs config`: where nfsd runs and how the plugins reach it.
async fn nfs_config(cli: &Cli, ctx: &Ctx<'_>, out: &mut dyn Write) -> Result<(), CliError> {
    let c = &ctx.cfg.cluster;
    let storage = ctx.cluster.storage_node(&c.storage_node_label).await?;
    let settings = plan::plugin_settings(ctx.cfg, &storage.addr);
    let v = json!({
        "service": c.nfsd_service,
        "image": ctx.cfg.images.nfsd,
        "storage_node": storage.hostname,
        "address": storage.addr,
        "nfs_port": c.nfsd_port,
        "api_port": c.nfsd_api_port,
        "data_dir": c.nfsd_data_dir,
        "plugin_settings": settings,
    });
    match cli.output {
        Output::Json => emit_json(out, &v),
        Output::Text => emit(
            out,
            &format!(
                "nfsd: service {} (image {}) on storage node {} ({})\n  NFS + MOUNT: {}:{}   control API: http://{}:{}/v1/health\n  data directory on {}: {}\nplugin settings on every node:\n  {}\n",
                c.nfsd_service,
                ctx.cfg.images.nfsd,
                storage.hostname,
                storage.addr,
                storage.addr,
                c.nfsd_port,
                storage.addr,
                c.nfsd_api_port,
                storage.hostname,
                c.nfsd_data_dir,
                settings.join("\n  ")
            ),
        ),
    }
}

async fn status(cli: &Cli, ctx: &Ctx<'_>, out: &mut dyn Write) -> Result<(), CliError> {
    let s = crate::inspect::status::gather(ctx.cluster, ctx.cfg).await?;
    match cli.output {
        Output::Json => emit_json(
            out,
            &serde_json::to_value(&s).context("cannot encode the status")?,
        ),
        Output::Text => emit(out, &s.text()),
    }
}

async fn doctor(
    cli: &Cli,
    cfg: &Config,
    password_file: Option<&PathBuf>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let ldap_password = read_ldap_password(password_file)?;
    // the login `run` would use; a missing or wrong one fails the registry check (a wrong
    // flag stops here)
    let registry_login = match registry::manager_login(cfg, cli.registry_password_file.as_deref()) {
        Err(e @ CliError::Usage(_)) => return Err(e),
        login => login.map_err(|e| crate::inspect::doctor::LoginProblem::of(&e)),
    };
    let opts = crate::inspect::doctor::DoctorOptions {
        ldap_password,
        config_path: Some(cli.config.clone()),
        registry_login,
    };
    let report = crate::inspect::doctor::examine(cfg, &opts).await;
    emit_report(cli, out, &report, || report.text())?;
    match report.error() {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// The LDAP bind password of `--ldap-password-file FILE|-`.
fn read_ldap_password(file: Option<&PathBuf>) -> Result<Option<String>, CliError> {
    let Some(p) = file else { return Ok(None) };
    let input = if p.as_os_str() == "-" {
        SecretInput::Stdin
    } else {
        SecretInput::File(p.clone())
    };
    let v = crate::apply::secrets::read_input(&input, &mut std::io::stdin().lock())?;
    Ok(Some(
        String::from_utf8(v).context("the LDAP password is not UTF-8")?,
    ))
}

async fn volumes(
    cli: &Cli,
    ctx: &Ctx<'_>,
    v: &VolumeCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let action = match v {
        VolumeCommand::Prepare {
            groups,
            ldap_password_file,
            dry_run,
        } => {
            let req = prepare::PrepareRequest {
                groups: groups.clone(),
                ldap_password: read_ldap_password(ldap_password_file.as_ref())?,
                dry_run: *dry_run,
            };
            let report = prepare::prepare(ctx.cluster, ctx.cfg, &req, &ctx.progress).await?;
            emit_report(cli, out, &report, || report.text())?;
            return report.error().map_or(Ok(()), Err);
        }
        VolumeCommand::List => ApiAction::List,
        VolumeCommand::Delete {
            name,
            purge,
            confirm,
        } => {
            let interactive = std::io::stdin().is_terminal();
            volume::confirm_delete(
                name,
                *purge,
                confirm.as_deref(),
                interactive,
                &mut std::io::stdin().lock(),
                &mut std::io::stderr(),
            )?;
            ApiAction::Delete {
                name: name.clone(),
                purge: *purge,
            }
        }
        VolumeCommand::Api { .. } => unreachable!("handled without a swarm"),
    };
    let r = volume::call(ctx.cluster, ctx.cfg, &action, &ctx.progress).await?;
    match cli.output {
        Output::Json => emit_json(
            out,
            &serde_json::to_value(&r).context("cannot encode the result")?,
        ),
        Output::Text => emit(out, &volume_text(&r)),
    }
}

fn volume_text(r: &ApiResult) -> String {
    match r {
        ApiResult::Volumes { volumes } => {
            let mut s = String::new();
            for v in volumes {
                s.push_str(&format!(
                    "{}\n",
                    serde_json::to_string(v).unwrap_or_default()
                ));
            }
            if volumes.is_empty() {
                s.push_str("no volumes\n");
            }
            s
        }
        ApiResult::Deleted { removed, purged } => match (&removed.tree_moved_to, purged) {
            (Some(t), true) => format!(
                "volume {}: removed; its tree ({t}) was deleted\n",
                removed.name
            ),
            (Some(t), false) => format!(
                "volume {}: removed; its tree was moved to {t} under nfsd's data directory (delete it with --purge)\n",
                removed.name
            ),
            (None, _) => format!(
                "volume {}: removed (a view of a shared tree, which stays)\n",
                removed.name
            ),
        },
        ApiResult::ShareDir { dir } => format!(
            "share directory {}/{}: owner uid {} gid {}, mode {:o}{}\n",
            dir.share,
            dir.name,
            dir.uid,
            dir.gid,
            dir.mode,
            if dir.created { " (created)" } else { "" }
        ),
        ApiResult::Ensured { name, created } => format!(
            "volume {name}: {}\n",
            if *created { "created" } else { "already there" }
        ),
        ApiResult::NotEnsured { name, error } => format!("volume {name}: failed: {error}\n"),
        ApiResult::Failed { error } => format!("failed: {error}\n"),
    }
}

fn emit(out: &mut dyn Write, text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")?;
    Ok(())
}

/// A report as JSON or as its text.
fn emit_report(
    cli: &Cli,
    out: &mut dyn Write,
    report: &impl serde::Serialize,
    text: impl FnOnce() -> String,
) -> Result<(), CliError> {
    match cli.output {
        Output::Json => emit_json(
            out,
            &serde_json::to_value(report).context("cannot encode the report")?,
        ),
        Output::Text => emit(out, &text()),
    }
}

fn emit_json(out: &mut dyn Write, v: &serde_json::Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).context("cannot encode the result as JSON")?;
    emit(out, &(text + "\n"))
}

fn init(cli: &Cli, force: bool, out: &mut dyn Write) -> Result<(), CliError> {
    settings::write_init(&cli.config, force).map_err(|e| match e {
        settings::InitError::Exists(_) => CliError::Usage(e.to_string()),
        settings::InitError::Write { .. } => CliError::Other(e.into()),
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
    // the admin's certificate files are read and checked here too (the self-signed set is made
    // by `run` or `tls self-signed`, never by a check)
    if config.tls.mode == settings::TlsMode::Files {
        tls::prepare(config, &[], time::OffsetDateTime::now_utc())?;
    }
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
    let text = hub::render(&config.hub_settings()?);
    match cli.output {
        Output::Text => emit(out, &text),
        Output::Json => emit_json(
            out,
            &json!({ "target": plan::HUB_CONFIG_TARGET, "content": text }),
        ),
    }
}

fn show_plan(cli: &Cli, config: &Config, out: &mut dyn Write) -> Result<(), CliError> {
    // the certificate as it is now (the self-signed one only once made); never made here
    let inputs = PlanInputs {
        tls: tls::configured(config, time::OffsetDateTime::now_utc())
            .ok()
            .map(|p| p.files()),
        ..PlanInputs::default()
    };
    let p = plan::plan(config, &inputs)?;
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
            SecretSource::Content { path } => {
                format!("from {} (named by its content)", path.display())
            }
        };
        s.push_str(&format!("secret {}: {how}\n", secret.name));
    }
    s.push_str(&format!(
        "config {} -> {}\n",
        p.hub_config.name.as_deref().unwrap_or_default(),
        plan::HUB_CONFIG_TARGET
    ));
    for svc in [&p.nfsd, &p.docker_gate, &p.hub] {
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
        let networks: Vec<String> = task
            .networks
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.target.clone())
            .collect();
        let ports = if ports.is_empty() {
            "none published".to_string()
        } else {
            ports.join(" ")
        };
        let networks = if networks.is_empty() {
            "none".to_string()
        } else {
            networks.join(" ")
        };
        let every = if crate::apply::is_global(svc) {
            "every "
        } else {
            ""
        };
        s.push_str(&format!(
            "service {}: image {}, on {every}{}, network {}, ports {}, mounts {}\n",
            svc.name.as_deref().unwrap_or_default(),
            c.image.as_deref().unwrap_or_default(),
            constraints,
            networks,
            ports,
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
        // what is in effect: the defaults, with the TLS directory next to the file
        let mut want = Config::default();
        want.tls.resolve(dir.path());
        assert_eq!(toml::from_str::<Config>(body).unwrap(), want);

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
        assert!(out.contains("service swarmhub-nfsd: image swarmhub/nfsd:0.1.0, on node.labels.swarmhub.storage==true, network host, ports none published, mounts /srv/swarmhub:/data"), "{out}");
        assert!(out.contains("service swarmhub-hub-docker-gate: image swarmhub/swarmhub:0.1.0, on every node.role==manager, network none, ports none published, mounts /var/run/docker.sock:/var/run/docker.sock swarmhub-hub-docker-gate:/run/swarmhub-docker-gate\n"), "{out}");
        assert!(out.contains("service swarmhub-hub: image swarmhub/hub:0.1.0, on node.role==manager, network swarmhub, ports 8000->8000/host, mounts swarmhub-hub-docker-gate:/run/swarmhub-docker-gate swarmhub-hub-data:/srv/jupyterhub/data\n"), "{out}");
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
        assert_eq!(v["hub"]["EndpointSpec"]["Mode"], "dnsrr");
        assert_eq!(v["nfsd"]["TaskTemplate"]["Networks"][0]["Target"], "host");
    }

    #[test]
    fn the_gate_reads_its_rules_and_names_the_variable_when_they_are_bad() {
        let rules =
            crate::plan::docker_gate_rules(&Config::default().hub_settings().unwrap()).to_json();
        let args = |rules: Option<&str>| DockerGateArgs {
            listen: "/run/swarmhub-docker-gate/docker.sock".into(),
            docker: "/var/run/docker.sock".into(),
            rules: rules.map(String::from),
        };
        let opts = gate_options(&args(Some(&rules))).unwrap();
        assert_eq!(
            opts.listen,
            PathBuf::from("/run/swarmhub-docker-gate/docker.sock")
        );
        assert_eq!(opts.docker, PathBuf::from("/var/run/docker.sock"));
        assert_eq!(opts.rules.to_json(), rules);
        for bad in [None, Some("{\"name_prefix\": 1}"), Some("not json")] {
            let e = gate_options(&args(bad)).unwrap_err();
            assert_eq!(e.code(), 2, "{e}");
            assert!(
                e.to_string().contains(swarmhub_docker_gate::RULES_ENV),
                "{e}"
            );
        }
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
