-- Whether a repository follows Azure DevOps' default branch (1: the sync
-- re-targets when the default branch changes there) or tracks a branch an
-- admin picked (0). Repositories added before this column follow it, as
-- every repository added without an explicit branch did.
ALTER TABLE repositories ADD COLUMN follow_default_branch BIGINT NOT NULL DEFAULT 1;
