import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    """Small networks train fastest on one thread, and the CI machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
