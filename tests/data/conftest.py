import pytest

from segmnv3.data.samples import write_sample_data


@pytest.fixture(scope="session")
def cityscapes_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("cityscapes")
    return write_sample_data("cityscapes", out, 4, 3, (64, 128), seed=1, num_test=2)


@pytest.fixture(scope="session")
def coco_root(tmp_path_factory):
    return write_sample_data("coco", tmp_path_factory.mktemp("coco"), 6, 3, (64, 96), seed=2)


@pytest.fixture(scope="session")
def folder_root(tmp_path_factory):
    return write_sample_data("folder", tmp_path_factory.mktemp("folder"), 3, 2, (48, 64), seed=3)
