// The in-between shape every reader produces before the train/validation carve:
// images already scaled to [0, 1] in NHWC order, labels as class indices, plus
// which file each came from so later checks can name it.

export interface Images {
  x: Float32Array;
  n: number;
  /** Shape of one example, e.g. [28, 28, 1]. */
  shape: number[];
}

export interface Examples extends Images {
  y: Int32Array;
  /** Where images and labels came from (path or URL) and the option that names them, for error messages. */
  imageFile: string;
  imageField: string;
  labelFile: string;
  labelField: string;
}

/** The decoded files of one dataset, before the validation carve. */
export interface LoadedData {
  name: string;
  /** sha256 hex of the raw bytes read, in the fixed order of the format. */
  sha256: string;
  /** Known from the format (cifar10, builtins) or the `classes` option; else derived from labels. */
  numClasses?: number;
  train: Examples;
  test: Examples;
}

