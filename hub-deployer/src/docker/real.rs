//! [`Engine`] for bollard's client: each operation is one API call, errors typed.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::errors::Error as DockerError;
use bollard::models::{
    BuildInfo, Config, ConfigSpec, ContainerCreateBody, ContainerInspectResponse, HostConfig,
    ImageInspect, Network, NetworkCreateRequest, NetworkInspect, Node, NodeSpec, Plugin,
    PluginPrivilege, PushImageInfo, Secret, SecretSpec, Service, ServiceSpec, SwarmInitRequest,
    SystemInfo, Task, VolumeListResponse,
};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, CreateImageOptions, CreatePluginOptions,
    DisablePluginOptions, DownloadFromContainerOptions, EnablePluginOptions,
    GetPluginPrivilegesOptions, InspectContainerOptions, InspectNetworkOptions,
    InstallPluginOptions, ListConfigsOptions, ListContainersOptionsBuilder, ListNetworksOptions,
    ListServicesOptions, ListTasksOptions, ListVolumesOptions, LogsOptions, PushImageOptions,
    RemoveContainerOptions, RemovePluginOptions, TagImageOptions, UpdateNodeOptions,
    UpdateServiceOptions,
};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::engine::{Engine, EngineError, ImageBuild, RegistryLogin, absent};

impl From<DockerError> for EngineError {
    fn from(e: DockerError) -> Self {
        match e {
            DockerError::DockerResponseServerError {
                status_code: 404,
                message,
            } => EngineError::NotFound(message),
            DockerError::DockerResponseServerError {
                status_code: 409,
                message,
            } => EngineError::Conflict(message),
            DockerError::DockerResponseServerError {
                status_code,
                message,
            } => EngineError::Other {
                status: status_code,
                message,
            },
            other => EngineError::Unreachable(other.to_string()),
        }
    }
}

/// A read (a GET, safe to send again) sent once more when the connection to dockerd broke
/// before an answer: the client reuses kept-alive connections, and one can close under a
/// request. dockerd's own error answers (404, 409, 500, ...) are never asked again.
async fn read<T, F, Fut>(call: F) -> Result<T, EngineError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, DockerError>>,
{
    match call().await {
        Err(e) if !matches!(e, DockerError::DockerResponseServerError { .. }) => {
            tracing::debug!("dockerd connection broke before an answer ({e}); asking again");
            Ok(call().await?)
        }
        r => Ok(r?),
    }
}

/// A login as the `X-Registry-Auth` header bollard sends.
fn credentials(login: &RegistryLogin) -> DockerCredentials {
    DockerCredentials {
        username: login.username.clone(),
        password: login.password.clone(),
        serveraddress: Some(login.server.clone()),
        ..Default::default()
    }
}

fn label_filter(label: Option<&str>) -> Option<HashMap<String, Vec<String>>> {
    label.map(|l| super::cluster::filter("label", l))
}

#[async_trait]
impl Engine for Docker {
    async fn info(&self) -> Result<SystemInfo, EngineError> {
        read(|| Docker::info(self)).await
    }

    async fn inspect_image(&self, name: &str) -> Result<ImageInspect, EngineError> {
        read(|| Docker::inspect_image(self, name)).await
    }

    async fn inspect_plugin(&self, name: &str) -> Result<Plugin, EngineError> {
        read(|| Docker::inspect_plugin(self, name)).await
    }

    async fn plugin_privileges(
        &self,
        host: &str,
        remote: &str,
        login: Option<&RegistryLogin>,
    ) -> Result<Vec<PluginPrivilege>, EngineError> {
        if let Some(l) = login {
            // bollard sends no registry login with this call
            return super::stream::plugin_privileges(host, remote, l).await;
        }
        let opts = GetPluginPrivilegesOptions {
            remote: remote.to_string(),
        };
        read(|| Docker::get_plugin_privileges(self, opts.clone())).await
    }

    async fn pull_plugin(
        &self,
        remote: &str,
        alias: &str,
        privileges: Vec<PluginPrivilege>,
        login: Option<&RegistryLogin>,
    ) -> Result<(), EngineError> {
        let opts = InstallPluginOptions {
            remote: remote.to_string(),
            name: Some(alias.to_string()),
        };
        let mut stream = Docker::install_plugin(self, opts, privileges, login.map(credentials));
        while let Some(item) = stream.next().await {
            item?;
        }
        Ok(())
    }

    async fn create_plugin(&self, alias: &str, tar: Vec<u8>) -> Result<(), EngineError> {
        let opts = CreatePluginOptions {
            name: alias.to_string(),
        };
        Ok(Docker::create_plugin(self, opts, bollard::body_full(tar.into())).await?)
    }

    async fn set_plugin(&self, alias: &str, settings: Vec<String>) -> Result<(), EngineError> {
        Ok(Docker::set_plugin_config(self, alias, settings).await?)
    }

    async fn enable_plugin(&self, alias: &str, timeout_seconds: i32) -> Result<(), EngineError> {
        let opts = EnablePluginOptions {
            timeout: timeout_seconds,
        };
        Ok(Docker::enable_plugin(self, alias, Some(opts)).await?)
    }

    async fn disable_plugin(&self, alias: &str) -> Result<(), EngineError> {
        let opts = DisablePluginOptions { force: Some(false) };
        Ok(Docker::disable_plugin(self, alias, Some(opts)).await?)
    }

    async fn remove_plugin(&self, alias: &str) -> Result<(), EngineError> {
        let opts = RemovePluginOptions { force: false };
        match Docker::remove_plugin(self, alias, Some(opts)).await {
            Ok(_) => Ok(()),
            // dockerd 20.10 answers 200 without the body bollard decodes: gone is what counts
            Err(e @ (DockerError::JsonDataError { .. } | DockerError::JsonSerdeError { .. })) => {
                match Docker::inspect_plugin(self, alias).await {
                    Err(DockerError::DockerResponseServerError {
                        status_code: 404, ..
                    }) => Ok(()),
                    _ => Err(EngineError::Unreachable(format!(
                        "dockerd's answer to removing plugin {alias} could not be read ({e}) and the plugin is still there"
                    ))),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn list_nodes(&self) -> Result<Vec<Node>, EngineError> {
        read(|| Docker::list_nodes(self, None::<bollard::query_parameters::ListNodesOptions>)).await
    }

    async fn inspect_node(&self, id: &str) -> Result<Node, EngineError> {
        read(|| Docker::inspect_node(self, id)).await
    }

    async fn update_node(&self, id: &str, spec: NodeSpec, version: i64) -> Result<(), EngineError> {
        Ok(Docker::update_node(self, id, spec, UpdateNodeOptions { version }).await?)
    }

    async fn inspect_service(&self, name: &str) -> Result<Service, EngineError> {
        read(|| Docker::inspect_service(self, name, None)).await
    }

    async fn list_services(&self, label: Option<&str>) -> Result<Vec<Service>, EngineError> {
        let opts = ListServicesOptions {
            filters: label_filter(label),
            status: Some(true),
        };
        read(|| Docker::list_services(self, Some(opts.clone()))).await
    }

    async fn create_service(
        &self,
        spec: ServiceSpec,
        login: Option<&RegistryLogin>,
    ) -> Result<String, EngineError> {
        let r = Docker::create_service(self, spec, login.map(credentials)).await?;
        Ok(r.id.unwrap_or_default())
    }

    async fn update_service(
        &self,
        name: &str,
        spec: ServiceSpec,
        version: i32,
        login: Option<&RegistryLogin>,
    ) -> Result<(), EngineError> {
        let opts = UpdateServiceOptions {
            version,
            // registry_auth_from "spec": the login sent here goes to the nodes
            ..Default::default()
        };
        Docker::update_service(self, name, spec, opts, login.map(credentials)).await?;
        Ok(())
    }

    async fn delete_service(&self, name: &str) -> Result<(), EngineError> {
        Ok(Docker::delete_service(self, name).await?)
    }

    async fn list_tasks(&self, service: &str) -> Result<Vec<Task>, EngineError> {
        let opts = ListTasksOptions {
            filters: Some(super::cluster::filter("service", service)),
        };
        read(|| Docker::list_tasks(self, Some(opts.clone()))).await
    }

    async fn task_logs(&self, task: &str, within: Duration) -> String {
        let opts = LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut stream = Docker::task_logs(self, task, Some(opts));
        let mut out = String::new();
        let read = async {
            while let Some(Ok(chunk)) = stream.next().await {
                out.push_str(&chunk.to_string());
            }
        };
        let _ = tokio::time::timeout(within, read).await;
        out
    }

    async fn list_secrets(&self) -> Result<Vec<Secret>, EngineError> {
        read(|| Docker::list_secrets(self, None::<bollard::query_parameters::ListSecretsOptions>))
            .await
    }

    async fn create_secret(&self, spec: SecretSpec) -> Result<String, EngineError> {
        Ok(Docker::create_secret(self, spec).await?.id)
    }

    async fn delete_secret(&self, id: &str) -> Result<(), EngineError> {
        Ok(Docker::delete_secret(self, id).await?)
    }

    async fn list_configs(&self, label: Option<&str>) -> Result<Vec<Config>, EngineError> {
        let opts = label.map(|l| ListConfigsOptions {
            filters: label_filter(Some(l)),
        });
        read(|| Docker::list_configs(self, opts.clone())).await
    }

    async fn create_config(&self, spec: ConfigSpec) -> Result<String, EngineError> {
        Ok(Docker::create_config(self, spec).await?.id)
    }

    async fn delete_config(&self, id: &str) -> Result<(), EngineError> {
        Ok(Docker::delete_config(self, id).await?)
    }

    async fn inspect_network(
        &self,
        name: &str,
        swarm_scope: bool,
    ) -> Result<NetworkInspect, EngineError> {
        let opts = swarm_scope.then(|| InspectNetworkOptions {
            verbose: false,
            scope: Some("swarm".into()),
        });
        read(|| Docker::inspect_network(self, name, opts.clone())).await
    }

    async fn list_networks(&self, label: &str) -> Result<Vec<Network>, EngineError> {
        let opts = ListNetworksOptions {
            filters: label_filter(Some(label)),
        };
        read(|| Docker::list_networks(self, Some(opts.clone()))).await
    }

    async fn create_network(&self, req: NetworkCreateRequest) -> Result<(), EngineError> {
        Docker::create_network(self, req).await?;
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        Ok(Docker::remove_network(self, name).await?)
    }

    async fn init_swarm(&self, req: SwarmInitRequest) -> Result<(), EngineError> {
        Docker::init_swarm(self, req).await?;
        Ok(())
    }

    async fn list_all_tasks(&self) -> Result<Vec<Task>, EngineError> {
        read(|| Docker::list_tasks(self, None::<ListTasksOptions>)).await
    }

    async fn list_volumes(&self) -> Result<VolumeListResponse, EngineError> {
        read(|| Docker::list_volumes(self, None::<ListVolumesOptions>)).await
    }

    async fn running_containers(&self) -> Result<Vec<ContainerInspectResponse>, EngineError> {
        let options = ListContainersOptionsBuilder::default()
            .filters(&HashMap::from([("status", vec!["running"])]))
            .build();
        let listed = read(|| Docker::list_containers(self, Some(options.clone()))).await?;
        let mut found = Vec::new();
        for c in listed {
            let Some(id) = c.id else { continue };
            // a container that ended since the list is no longer running: skipped
            if let Some(c) = absent(
                read(|| Docker::inspect_container(self, &id, None::<InspectContainerOptions>))
                    .await,
            )? {
                found.push(c);
            }
        }
        Ok(found)
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        Docker::remove_volume(
            self,
            name,
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await?;
        Ok(())
    }

    fn build_image(
        &self,
        build: ImageBuild,
        context: Vec<u8>,
    ) -> BoxStream<'_, Result<BuildInfo, EngineError>> {
        let opts = BuildImageOptions {
            dockerfile: "Dockerfile".into(),
            t: Some(build.tag),
            target: build.target,
            buildargs: Some(build.buildargs),
            rm: true,
            networkmode: build.network,
            ..Default::default()
        };
        Docker::build_image(self, opts, None, Some(bollard::body_full(context.into())))
            .map(|item| item.map_err(EngineError::from))
            .boxed()
    }

    async fn registry_digest(
        &self,
        image: &str,
        login: Option<&RegistryLogin>,
    ) -> Result<String, EngineError> {
        let creds = login.map(credentials);
        let d = read(|| Docker::inspect_registry_image(self, image, creds.clone())).await?;
        d.descriptor.digest.ok_or_else(|| EngineError::Other {
            status: 502,
            message: format!("the registry answered for {image} without a digest"),
        })
    }

    async fn pull_image(
        &self,
        image: &str,
        login: Option<&RegistryLogin>,
    ) -> Result<(), EngineError> {
        let opts = CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        };
        let mut stream = Docker::create_image(self, Some(opts), None, login.map(credentials));
        while let Some(item) = stream.next().await {
            if let Some(e) = item?.error_detail.and_then(|d| d.message) {
                return Err(EngineError::Other {
                    status: 500,
                    message: e,
                });
            }
        }
        Ok(())
    }

    async fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<(), EngineError> {
        let opts = TagImageOptions {
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
        };
        Docker::tag_image(self, source, Some(opts)).await?;
        Ok(())
    }

    async fn image_files(&self, image: &str, path: &str) -> Result<Vec<u8>, EngineError> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            // never started: the image needs no command of its own, the container no network
            cmd: Some(vec!["none".into()]),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = Docker::create_container(self, None::<CreateContainerOptions>, body)
            .await?
            .id;
        let mut tar = Vec::new();
        let mut stream = Docker::download_from_container(
            self,
            &id,
            Some(DownloadFromContainerOptions {
                path: path.to_string(),
            }),
        );
        let mut result = Ok(());
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(b) => tar.extend_from_slice(&b),
                Err(e) => {
                    result = Err(EngineError::from(e));
                    break;
                }
            }
        }
        drop(stream);
        let opts = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        Docker::remove_container(self, &id, Some(opts)).await?;
        result.map(|()| tar)
    }

    async fn push_plugin(
        &self,
        host: &str,
        name: &str,
        login: Option<&RegistryLogin>,
    ) -> Result<(), EngineError> {
        // bollard's push_plugin returns at the headers and drops the progress, which makes
        // dockerd cancel the push
        super::stream::push_plugin(host, name, login).await
    }

    fn push_image<'a>(
        &'a self,
        name: &'a str,
        tag: &'a str,
        login: RegistryLogin,
    ) -> BoxStream<'a, Result<PushImageInfo, EngineError>> {
        let opts = PushImageOptions {
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        Docker::push_image(self, name, Some(opts), Some(credentials(&login)))
            .map(|item| item.map_err(EngineError::from))
            .boxed()
    }
}
