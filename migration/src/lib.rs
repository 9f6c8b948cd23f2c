//! Schema migrations, run at start-up and by `realtime-chat migrate`.
pub use sea_orm_migration::prelude::*;

mod m20261124_000001_initial;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261124_000001_initial::Migration)]
    }
}
