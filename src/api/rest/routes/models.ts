// /v1/models (TF.js Layers uploads: multipart files or one archive; or one
// ONNX or Keras model file, converted by the service) and
// /v1/datasets (dataset references as JSON, or uploads: multipart files or
// one archive, told apart by the content type). The service validates both in full.
// DELETE answers 204; see service/deletion.ts for when it is refused.
import { deleteDataset, deleteModel, getDataset, getModel, listDatasetsPage, listModelsPage, registerDataset, uploadDataset, uploadModel, invalid, withUploadSlot } from '../../../service/index.js';
import { COMMON_ERRORS, PAGE_PARAMS, pageOf, pageQuery, pathParam, ref, type RouteDef } from '../route.js';
import { isUploadRequest, readDatasetUpload, readModelUpload } from '../upload.js';

const id = (what: string) => ({ name: 'id', description: `${what} id`, schema: { type: 'string', format: 'uuid' } });

const multipart = {
  type: 'object',
  properties: {
    files: { type: 'array', items: { type: 'string', format: 'binary' }, description: 'model.json and the weight files its manifest names (file names may keep a folder); or one ONNX model file named *.onnx' },
    archive: { type: 'string', format: 'binary', description: 'Instead of files: one .zip, .tar.gz or .tar holding them' },
    name: { type: 'string', description: 'A label for the model' },
  },
};
const binary = { type: 'string', format: 'binary' };
const datasetMultipart = {
  type: 'object',
  properties: {
    files: {
      type: 'array',
      items: { type: 'string', format: 'binary' },
      description:
        'The dataset files, named as a reference folder would hold them: the four IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...), x_train.npy / y_train.npy / x_test.npy / y_test.npy, CIFAR-10 data_batch_N.bin + test_batch.bin, or one .npz',
    },
    archive: { type: 'string', format: 'binary', description: 'Instead of files: one .zip, .tar.gz or .tar holding them, or an image folder (class folders of PNG/JPEG, optional train/val/test folders)' },
  },
};

export const modelRoutes: RouteDef[] = [
  {
    method: 'post',
    path: '/v1/models',
    operationId: 'uploadModel',
    tag: 'models',
    summary: 'Upload a TF.js Layers model; jobs then name it as `model:<id>` (or its bare id)',
    rawBody: true,
    query: [{ name: 'name', description: 'A label for the model (raw archive bodies)', schema: { type: 'string' } }],
    body: {
      required: true,
      content: { 'multipart/form-data': multipart, 'application/zip': binary, 'application/gzip': binary, 'application/x-tar': binary, 'application/octet-stream': { ...binary, description: 'An archive as above, or an ONNX model file' } },
    },
    responses: { 201: { description: 'Stored', content: { 'application/json': ref('Model') }, headers: { Location: 'The model URL' } } },
    errors: ['INVALID_ARGUMENT', 'UNSUPPORTED_MODEL', 'PAYLOAD_TOO_LARGE', 'UPLOAD_TIMEOUT', 'QUOTA_EXCEEDED', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      const model = await withUploadSlot(ctx, tenant, async () => {
        const { upload, name } = await readModelUpload(req, ctx.config.maxUploadBytes, ctx.config);
        return uploadModel(ctx, tenant, upload, { name });
      });
      res.setHeader('Location', `/v1/models/${model.id}`);
      res.status(201).json(model);
    },
  },
  {
    method: 'get',
    path: '/v1/models',
    operationId: 'listModels',
    tag: 'models',
    summary: "The tenant's uploaded models, newest first",
    query: PAGE_PARAMS,
    responses: { 200: { description: 'Models', content: { 'application/json': pageOf('Model') } } },
    errors: ['INVALID_ARGUMENT', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      res.json(await listModelsPage(ctx, tenant, pageQuery(req)));
    },
  },
  {
    method: 'get',
    path: '/v1/models/:id',
    operationId: 'getModel',
    tag: 'models',
    summary: 'An uploaded model and its architecture summary',
    params: [id('Model')],
    responses: { 200: { description: 'The model', content: { 'application/json': ref('Model') } } },
    errors: ['NOT_FOUND', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      res.json(await getModel(ctx, tenant, pathParam(req, 'id')));
    },
  },
  {
    method: 'delete',
    path: '/v1/models/:id',
    operationId: 'deleteModel',
    tag: 'models',
    summary: 'Delete an uploaded model and its files (409 while a queued or running job uses it; finished jobs keep their results)',
    params: [id('Model')],
    responses: { 204: { description: 'Deleted' } },
    errors: ['NOT_FOUND', 'FAILED_PRECONDITION', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      await deleteModel(ctx, tenant, pathParam(req, 'id'));
      res.status(204).end();
    },
  },
  {
    method: 'post',
    path: '/v1/datasets',
    operationId: 'registerDataset',
    tag: 'datasets',
    summary:
      'Register a dataset reference (JSON), or upload a dataset (multipart files or one archive); jobs then name it as `dataset:<id>` (or its bare id). ' +
      'An upload is checked before it is stored (archive caps, then headers, counts and label range as for a reference; an image folder by its layout and images) ' +
      'and stored content-addressed: the same files again return the same dataset. A body over the upload cap is refused with 413 while it streams.',
    body: {
      required: true,
      content: { 'application/json': ref('RegisterDatasetRequest'), 'multipart/form-data': datasetMultipart, 'application/zip': binary, 'application/gzip': binary, 'application/x-tar': binary },
    },
    responses: { 201: { description: 'Registered or stored (registering or uploading it again returns the same one)', content: { 'application/json': ref('Dataset') } } },
    errors: ['INVALID_ARGUMENT', 'PAYLOAD_TOO_LARGE', 'UPLOAD_TIMEOUT', 'QUOTA_EXCEEDED', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      let dataset;
      if (isUploadRequest(req)) {
        dataset = await withUploadSlot(ctx, tenant, async () => uploadDataset(ctx, tenant, await readDatasetUpload(req, ctx.config.maxUploadBytes, ctx.config.maxUploadFiles, ctx.config)));
      } else {
        const body: unknown = req.body;
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('body', 'body: expected a JSON object { "reference": "..." }');
        const unknown = Object.keys(body).find((k) => k !== 'reference');
        if (unknown !== undefined) throw invalid(unknown, `${unknown}: unknown field (a dataset registration takes only 'reference')`);
        dataset = await registerDataset(ctx, tenant, (body as { reference?: unknown }).reference);
      }
      res.setHeader('Location', `/v1/datasets/${dataset.id}`);
      res.status(201).json(dataset);
    },
  },
  {
    method: 'get',
    path: '/v1/datasets',
    operationId: 'listDatasets',
    tag: 'datasets',
    summary: "The tenant's registered datasets",
    query: PAGE_PARAMS,
    responses: { 200: { description: 'Datasets', content: { 'application/json': pageOf('Dataset') } } },
    errors: ['INVALID_ARGUMENT', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      res.json(await listDatasetsPage(ctx, tenant, pageQuery(req)));
    },
  },
  {
    method: 'get',
    path: '/v1/datasets/:id',
    operationId: 'getDataset',
    tag: 'datasets',
    summary: 'A registered dataset',
    params: [id('Dataset')],
    responses: { 200: { description: 'The dataset', content: { 'application/json': ref('Dataset') } } },
    errors: ['NOT_FOUND', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      res.json(await getDataset(ctx, tenant, pathParam(req, 'id')));
    },
  },
  {
    method: 'delete',
    path: '/v1/datasets/:id',
    operationId: 'deleteDataset',
    tag: 'datasets',
    summary: 'Delete a registered dataset (409 while a queued or running job uses it; finished jobs keep their results)',
    params: [id('Dataset')],
    responses: { 204: { description: 'Deleted' } },
    errors: ['NOT_FOUND', 'FAILED_PRECONDITION', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      await deleteDataset(ctx, tenant, pathParam(req, 'id'));
      res.status(204).end();
    },
  },
];
