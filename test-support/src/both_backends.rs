//! `on_both_backends!`: one test body, run once on SQLite and once on PostgreSQL.

/// Runs each async test body on SQLite and on PostgreSQL, as the tests `<name>::sqlite` and
/// `<name>::postgres`.
///
/// `setup` is anything callable with a [`Backend`](crate::Backend) that returns a future of what
/// the bodies take (a function path such as `TestApp::spawn`, or a closure that adds options);
/// the parameter's type is inferred from it.
///
/// ```ignore
/// test_support::on_both_backends! {
///     setup = TestApp::spawn;
///     async fn a_member_signs_in(app) { /* ... */ }
/// }
/// ```
///
/// The PostgreSQL test is ignored, with the variable to set, when the calling crate was built
/// without `TEST_POSTGRES_URL` (the `postgres_tests` cfg is read where the macro expands), and is
/// skipped by [`postgres_enabled`](crate::postgres_enabled) when the variable is gone at run time.
/// Attributes written before a body (such as `#[should_panic]`) go on both tests.
#[macro_export]
macro_rules! on_both_backends {
    (
        setup = $setup:expr;
        $($(#[$meta:meta])* async fn $name:ident($arg:pat) $body:block)*
    ) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run(backend: $crate::Backend) {
                let setup = $setup;
                let $arg = setup(backend).await;
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn sqlite() {
                run($crate::Backend::Sqlite).await;
            }

            #[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn postgres() {
                if $crate::postgres_enabled() {
                    run($crate::Backend::Postgres).await;
                }
            }
        }
    )*};
}
