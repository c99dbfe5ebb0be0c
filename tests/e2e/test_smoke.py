"""The quickstart path: berth up prints what to paste, and the AWS CLI works with it."""


def test_up_prints_endpoint_and_credentials(berth):
    assert "ready in" in berth.output
    assert berth.access_key.startswith("BKIA") and len(berth.access_key) == 20
    assert len(berth.secret_key) == 40


def test_cli_lists_the_default_cluster(berth):
    out = berth.cli("ecs", "list-clusters")
    assert out["clusterArns"] == ["arn:aws:ecs:us-east-1:000000000000:cluster/default"]
