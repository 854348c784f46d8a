// A stored dataset can be trained on only once every image's bytes are in the store.
import type { Executor } from '../../db/client.js';
import { badInput } from '../../graphql/errors.js';
import { isStoredDataset } from '../datasets/datasets.service.js';
import type { DatasetRecord } from '../datasets/datasets.store.js';
import { storedImageCounts } from './artifacts.store.js';

export async function assertDatasetComplete(db: Executor, dataset: DatasetRecord, field: string) {
  if (!isStoredDataset(dataset)) return;
  const stored = (await storedImageCounts(db, [dataset.id])).get(dataset.id) ?? 0;
  if (stored < dataset.imageCount) {
    throw badInput(field, `dataset ${dataset.id} has ${dataset.imageCount - stored} of its ${dataset.imageCount} images still to upload (beginDatasetUpload)`);
  }
}
