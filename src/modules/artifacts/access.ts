// Who may have signed URLs of which files. VIEWER and up: any run's and dataset's. An AGENT key:
// only files of runs its agents hold or held, and of those runs' datasets. This is the artifact
// module's own answer; when the AGENT read scope is decided for every field, these two functions
// are the place to point at it.
import { forbidden, unauthenticated } from '../../graphql/errors.js';
import type { Context } from '../../graphql/context.js';

export async function assertMayReadRunFiles(ctx: Pick<Context, 'principal' | 'loaders'>, runId: string) {
  if (!ctx.principal) throw unauthenticated();
  if (ctx.principal.role !== 'AGENT') return;
  if (!(await ctx.loaders.artifacts.runReadableByAgentKey(ctx.principal.keyId).load(runId))) {
    throw forbidden(`Run ${runId} was never held by an agent of this key: its files are not this key's to read`);
  }
}

export async function assertMayReadDatasetFiles(ctx: Pick<Context, 'principal' | 'loaders'>, datasetId: string) {
  if (!ctx.principal) throw unauthenticated();
  if (ctx.principal.role !== 'AGENT') return;
  if (!(await ctx.loaders.artifacts.datasetReadableByAgentKey(ctx.principal.keyId).load(datasetId))) {
    throw forbidden(`Dataset ${datasetId} belongs to no run an agent of this key holds or held: its files are not this key's to read`);
  }
}
