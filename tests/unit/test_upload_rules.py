"""Upload rules enforced in code because Azurite does not: hosts, schemes, block counts, metadata size."""

import pytest

from shared.upload.errors import UploadLimitExceeded, UploadTargetRefused
from shared.upload.target import UploadTargetPolicy
from shared.upload.uploader import MAX_BLOCKS, BlockSizer, MiB

AZURE = "https://acct.blob.core.windows.net/c/b?sv=1&sig=abc"


def test_azure_blob_https_urls_are_accepted():
    UploadTargetPolicy().check(AZURE)
    UploadTargetPolicy().check("https://acct.blob.core.usgovcloudapi.net/c/b?sig=abc")


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://acct.blob.core.windows.net/c/b?sig=abc", "https"),
        ("https://evil.example.com/c/b?sig=abc", "not in UPLOAD_ALLOWED_HOSTS"),
        ("https://blob.core.windows.net.evil.com/c/b?sig=abc", "not in UPLOAD_ALLOWED_HOSTS"),
        ("https://acct.blob.core.windows.net/c/b", "no SAS signature"),
        ("http://127.0.0.1:10000/devstoreaccount1/c/b?sig=abc", "https"),
        ("https://u:p@acct.blob.core.windows.net/c/b?sig=abc", "user credentials"),
    ],
)
def test_other_targets_are_refused_with_the_reason(uri, reason):
    with pytest.raises(UploadTargetRefused, match=reason) as raised:
        UploadTargetPolicy().check(uri)
    assert "sig=abc" not in str(raised.value)


def test_plain_http_to_loopback_only_when_enabled_for_the_local_stack():
    policy = UploadTargetPolicy(allow_http_loopback=True)
    policy.check("http://127.0.0.1:10000/devstoreaccount1/c/b?sig=abc")
    with pytest.raises(UploadTargetRefused):
        policy.check("http://10.0.0.5:10000/devstoreaccount1/c/b?sig=abc")


def test_block_size_grows_from_the_size_hint_so_the_file_fits_half_the_budget():
    sizer = BlockSizer(4 * MiB, size_hint=400 * 1024 * MiB)  # 400 GiB
    assert sizer.size % MiB == 0
    assert 400 * 1024 * MiB / sizer.size <= MAX_BLOCKS // 2


def test_a_stream_far_larger_than_hinted_still_fits_in_50000_blocks():
    sizer = BlockSizer(4 * MiB, size_hint=1 * MiB)
    total = 0
    while total < 1024 * 1024 * MiB:  # 1 TiB with a 1 MiB hint
        total += sizer.next_size()
    assert sizer.count <= MAX_BLOCKS


def test_more_than_50000_blocks_is_refused():
    sizer = BlockSizer(16, size_hint=None)
    sizer._grow_at = MAX_BLOCKS + 1  # never grow: force the limit
    for _ in range(MAX_BLOCKS):
        sizer.next_size()
    with pytest.raises(UploadLimitExceeded):
        sizer.next_size()
