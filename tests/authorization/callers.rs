//! What each kind of caller may do, call by call: services act as `R`
//! users only (and a refusal names the permission, the caller and the
//! user); end users see and change only their own sessions; a module run's
//! token reaches its own session only, for as long as its run lasts; health
//! and reflection need no credential.

use sessiond_proto::v1 as pb;
use tonic::Code;

use super::common::metadata;
use super::{Caller, World, assert_refused};

#[tokio::test]
async fn services_act_as_r_users_only_and_permission_denied_names_what() {
    let mut world = World::new().await;
    let service = Caller::bearer("service", &world.tokens.service.clone());
    let setup = world.setup.clone();
    // Allowed for R41: open, run a module as R41, push and pop, close.
    let id = world.open(&service, "R41").await.unwrap();
    let run = world.open_module(&service, id).await.unwrap();
    assert_eq!(run.acting_user, "R41");
    let pushed = world.push(&service, id, "R42").await.unwrap();

    // Not for admin: refused, naming the permission, the subject, the user.
    let before = world.snapshot().await;
    let refused = world.push(&service, id, "admin").await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(super::common::reason(&refused), "PERMISSION_DENIED");
    assert_eq!(metadata(&refused, "permission").as_deref(), Some("act_as"));
    assert_eq!(metadata(&refused, "subject").as_deref(), Some("billing"));
    assert_eq!(metadata(&refused, "user").as_deref(), Some("admin"));
    assert_eq!(metadata(&refused, "session_id"), Some(id.to_string()));
    let refused = world.open(&service, "admin").await.unwrap_err();
    assert_eq!(
        metadata(&refused, "permission").as_deref(),
        Some("open_clientless_session")
    );
    assert_eq!(metadata(&refused, "user").as_deref(), Some("admin"));
    assert_eq!(
        world.snapshot().await,
        before,
        "refused calls change nothing"
    );

    // Once the session acts as admin (the setup pushed it), the service may
    // neither run a module there nor pop admin's scope.
    world.pop(&service, id, pushed).await.unwrap();
    let admin_scope = world.push(&setup, id, "admin").await.unwrap();
    let before = world.snapshot().await;
    let refused = world.open_module(&service, id).await.unwrap_err();
    assert_eq!(
        metadata(&refused, "permission").as_deref(),
        Some("run_module")
    );
    assert_eq!(metadata(&refused, "user").as_deref(), Some("admin"));
    assert_eq!(metadata(&refused, "module_id").as_deref(), Some("hold"));
    let refused = world.pop(&service, id, admin_scope).await.unwrap_err();
    assert_eq!(metadata(&refused, "permission").as_deref(), Some("act_as"));
    assert_eq!(
        world.snapshot().await,
        before,
        "refused calls change nothing"
    );

    // CheckAccess says the same without doing it.
    let mut check = async |permission: pb::Permission, user: &str| {
        let request = service.request(pb::CheckAccessRequest {
            permission: permission.into(),
            session_id: id,
            user: user.to_owned(),
            module_id: "hold".to_owned(),
        });
        world
            .access
            .check_access(request)
            .await
            .unwrap()
            .into_inner()
    };
    let yes = check(pb::Permission::ActAs, "R7").await;
    assert!(yes.allowed, "{yes:?}");
    let no = check(pb::Permission::ActAs, "root").await;
    assert!(!no.allowed);
    assert!(no.reason.contains("root"), "{no:?}");
    let no = check(pb::Permission::RunModule, "").await;
    assert!(!no.allowed, "the session acts as admin now: {no:?}");
    world.close(&service, id).await.unwrap();
}

#[tokio::test]
async fn end_users_see_and_change_only_their_own_sessions() {
    let mut world = World::new().await;
    let end_user = Caller::bearer("R41", &world.tokens.r41.clone());
    assert_eq!(
        world.list(&end_user, "").await,
        [world.r41, world.r41_clientless]
    );
    assert!(world.list(&end_user, "admin").await.is_empty());

    // Itself as user context: yes; anyone else: no.
    world.set(&end_user, world.r41, "R41").await.unwrap();
    let refused = world.set(&end_user, world.r41, "R42").await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let who = world.who_am_i(&end_user).await;
    assert_eq!(who.subject, "R41");
    assert_eq!(who.method(), pb::AuthenticationMethod::StaticToken);

    // It may end its own session.
    let ended = world.end(&end_user, world.r41).await.unwrap();
    assert_eq!(ended.state(), pb::SessionState::Ended);
}

#[tokio::test]
async fn a_module_token_reaches_its_own_session_only_and_expires_with_its_run() {
    let mut world = World::new().await;
    let module = Caller::bearer("module", &world.module_token.clone());
    let own = world.r41_clientless;
    let who = world.who_am_i(&module).await;
    assert_eq!(
        (who.subject.as_str(), who.method(), who.session_id),
        ("setup", pb::AuthenticationMethod::ModuleRun, own)
    );
    assert_eq!(world.session_user(&module, own).await.unwrap(), "R41");
    let pushed = world.push(&module, own, "R42").await.unwrap();
    world.pop(&module, own, pushed).await.unwrap();
    for other in [world.r41, world.admin, world.admin_clientless] {
        let refused = world.session_user(&module, other).await.map(drop);
        assert_refused(
            "another session",
            &refused,
            Code::NotFound,
            "SESSION_NOT_FOUND",
        );
    }
    let refused = world.end(&module, own).await.map(drop);
    assert_refused(
        "its own session's end",
        &refused,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );

    // The run concludes when its session closes; its token with it.
    let setup = world.setup.clone();
    world.close(&setup, own).await.unwrap();
    let refused = world.session_user(&module, own).await.map(drop);
    assert_refused(
        "after the run",
        &refused,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
}

#[tokio::test]
async fn health_and_reflection_answer_without_a_credential() {
    let world = World::new().await;
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(world.server.channel().await);
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
            world.server.channel().await,
        );
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let listed = format!("{:?}", answers.message().await.unwrap().unwrap());
    assert!(listed.contains("sessiond.v1.AccessService"), "{listed}");
}
