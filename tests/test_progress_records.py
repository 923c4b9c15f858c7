"""Issue 28: which names a progress record may list, against the naming scheme itself (a brute-force enumeration)."""
from rls_lightning.inversion.outputs import is_output_name, output_names


def test_a_record_may_list_exactly_the_names_the_naming_scheme_produces():
    stem = "face"
    produced = {name for k in range(1, 40) for with_input in (False, True)
                for name in output_names(stem, k, with_input)}
    assert all(is_output_name(stem, name) for name in produced)
    suffixes = [".png", "_rls.png", ".pt", "_lr.png", "_std.png", "_s0.png", "_s7.png", "_s38.png", "_s007.png",
                "_s-1.png", ".json", "_rls.png.bak", "/../victim.txt", "_s1.png/../../victim"]
    for suffix in suffixes:
        assert is_output_name(stem, stem + suffix) == (stem + suffix in produced), suffix
    for foreign in ("/tmp/face.png", "../face.png", "other.png", "face", 3, None):
        assert not is_output_name(stem, foreign)
