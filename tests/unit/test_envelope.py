"""The encryption envelope on its own: ciphertext that decrypts to the source, metadata as Clearance reads it."""

import base64
import json
import os
import random

import pytest
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from shared.crypto.envelope import RSA_OAEP, StreamEncryptor, ciphertext_length


@pytest.fixture(scope="module")
def recipient() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def encrypt(recipient: rsa.RSAPrivateKey, data: bytes, chunk_sizes: list[int]) -> tuple[bytes, dict]:
    encryptor = StreamEncryptor(recipient.public_key(), "kid-1")
    out = bytearray(len(data) + 64)
    written, offset, i = 0, 0, 0
    while offset < len(data):
        size = chunk_sizes[i % len(chunk_sizes)]
        chunk = data[offset : offset + size]
        written += encryptor.encrypt_into(chunk, memoryview(out)[written:])
        offset, i = offset + size, i + 1
    written += encryptor.finish_into(memoryview(out)[written:])
    return bytes(out[:written]), json.loads(encryptor.metadata_value())


def decrypt(recipient: rsa.RSAPrivateKey, ciphertext: bytes, metadata: dict) -> bytes:
    key = recipient.decrypt(base64.b64decode(metadata["WrappedContentKey"]["EncryptedKey"]), RSA_OAEP)
    iv = base64.b64decode(metadata["ContentEncryptionIV"])
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = sym_padding.PKCS7(128).unpadder()
    return unpadder.update(decryptor.update(ciphertext) + decryptor.finalize()) + unpadder.finalize()


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 4095, 4096, 4097, 100_003])
def test_ciphertext_decrypts_to_the_source_whatever_the_size_and_chunking(recipient, size):
    data = os.urandom(size)
    for chunking in ([size or 1], [1, 7, 16, 33], [4096]):
        ciphertext, metadata = encrypt(recipient, data, chunking)
        assert len(ciphertext) == ciphertext_length(size)
        assert decrypt(recipient, ciphertext, metadata) == data


def test_block_aligned_plaintext_gets_a_full_padding_block(recipient):
    ciphertext, _ = encrypt(recipient, b"\0" * 32, [32])
    assert len(ciphertext) == 48


def test_metadata_has_exactly_the_names_and_values_clearance_reads():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    metadata = json.loads(StreamEncryptor(key.public_key(), "registry-key-7").metadata_value())
    assert set(metadata) == {
        "WrappedContentKey",
        "EncryptionAgent",
        "ContentEncryptionIV",
        "KeyWrappingMetadata",
        "EncryptionMode",
    }
    assert metadata["WrappedContentKey"]["KeyId"] == "registry-key-7"
    assert metadata["WrappedContentKey"]["Algorithm"] == "RSA-OAEP"
    assert metadata["EncryptionAgent"] == {"Protocol": "1.0", "EncryptionAlgorithm": "AES_CBC_256"}
    assert metadata["EncryptionMode"] == "FullBlob"
    assert set(metadata["KeyWrappingMetadata"]) == {"EncryptionLibrary"}
    # standard base64 with padding, not base64url
    assert len(base64.b64decode(metadata["ContentEncryptionIV"], validate=True)) == 16
    assert len(base64.b64decode(metadata["WrappedContentKey"]["EncryptedKey"], validate=True)) == 256


def test_every_file_gets_a_fresh_key_and_iv():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    first = json.loads(StreamEncryptor(key.public_key(), "k").metadata_value())
    second = json.loads(StreamEncryptor(key.public_key(), "k").metadata_value())
    assert first["ContentEncryptionIV"] != second["ContentEncryptionIV"]
    unwrap = [key.decrypt(base64.b64decode(m["WrappedContentKey"]["EncryptedKey"]), RSA_OAEP) for m in (first, second)]
    assert unwrap[0] != unwrap[1] and all(len(k) == 32 for k in unwrap)


def test_random_chunkings_round_trip(recipient):
    rng = random.Random(7)
    for _ in range(20):
        data = os.urandom(rng.randrange(0, 5000))
        chunking = [rng.randrange(1, 600) for _ in range(5)]
        ciphertext, metadata = encrypt(recipient, data, chunking)
        assert decrypt(recipient, ciphertext, metadata) == data
