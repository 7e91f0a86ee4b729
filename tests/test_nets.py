"""Networks: shapes, initialisation gains, dueling identity, squashed log-densities,
jit/vmap over parameter sets, argument errors.

Each test does its JAX work inside one jitted function (or ``jax.eval_shape``) and
compares arrays in NumPy: op-by-op execution would compile every primitive separately.
"""

import math
import re

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxrl import nets

KEY = jax.random.key(0)


def obs_vec(*batch, d=4):
    return jax.random.normal(jax.random.key(1), (*batch, d))


def test_public_names_have_docstrings():
    for name in nets.__all__:
        obj = getattr(nets, name)
        if callable(obj):
            assert obj.__doc__, name


def _dist_shapes(net, o):
    """(sample shape, log-prob shape) of a policy's distribution, without compiling."""

    def f():
        dist = net.apply(net.init(KEY, o), o)
        if isinstance(dist, nets.PolicyValue):
            dist = dist.distribution
        return dist.sample_and_log_prob(seed=KEY)

    a, lp = jax.eval_shape(f)
    return a.shape, lp.shape


@pytest.mark.parametrize("batch", [(), (3,), (2, 3)])
def test_output_shapes(batch):
    o = jnp.zeros((*batch, 4))
    a = jnp.zeros((*batch, 2))
    cases = [
        (nets.MLP((8, 6)), (o,), (*batch, 6)),
        (nets.ValueCritic((8,)), (o,), batch),
        (nets.QNetwork(5, (8,)), (o,), (*batch, 5)),
        (nets.QNetwork(5, (8,), dueling=True), (o,), (*batch, 5)),
        (nets.ContinuousQ((8,)), (o, a), batch),
        (nets.DeterministicActor(2, (8,)), (o,), (*batch, 2)),
    ]
    for net, args, shape in cases:
        out = jax.eval_shape(lambda net=net, args=args: net.apply(net.init(KEY, *args), *args))
        assert out.shape == shape, net
    twin = nets.TwinQ((8,))
    q = jax.eval_shape(lambda: twin.apply(twin.init(KEY, o, a), o, a))
    assert q.q1.shape == q.q2.shape == batch
    for net, event in [
        (nets.CategoricalActor(num_actions=3, hidden_sizes=(8,)), ()),
        (nets.GaussianActor(action_dim=2, hidden_sizes=(8,)), (2,)),
        (nets.SquashedGaussianActor(2, (8,)), (2,)),
        (nets.ActorCritic(3, True, (8,)), ()),
        (nets.ActorCritic(2, False, (8,)), (2,)),
    ]:
        assert _dist_shapes(net, o) == ((*batch, *event), batch), net


def test_cnn_torso_minatar_shapes():
    o = jnp.zeros((2, 3, 10, 10, 4))
    cnn = nets.CNN()
    params = jax.eval_shape(cnn.init, KEY, o)
    assert params["params"]["Conv_0"]["kernel"].shape == (3, 3, 4, 16)
    assert params["params"]["MLP_0"]["Dense_0"]["kernel"].shape == (8 * 8 * 16, 128)
    assert jax.eval_shape(cnn.apply, params, o).shape == (2, 3, 128)
    assert jax.eval_shape(cnn.apply, params, o[0, 0]).shape == (128,)
    ac = nets.ActorCritic(3, True, hidden_sizes=(32,), torso="cnn", shared_torso=True)
    d, v = jax.eval_shape(lambda: ac.apply(ac.init(KEY, o), o))
    assert d.logits.shape == (2, 3, 3) and v.shape == (2, 3)
    q = nets.QNetwork(6, (32,), torso="cnn")
    assert jax.eval_shape(lambda: q.apply(q.init(KEY, o), o)).shape == (2, 3, 6)
    with pytest.raises(ValueError, match="H, W, C"):
        jax.eval_shape(cnn.init, KEY, jnp.ones((4,)))
    # Real numbers once: a MinAtar-like boolean image runs and gives finite features.
    img = jax.random.bernoulli(KEY, 0.2, (2, 10, 10, 4))
    small = nets.CNN(hidden_sizes=(8,))
    out = jax.jit(lambda x: small.apply(small.init(KEY, x), x))(img)
    assert out.shape == (2, 8) and np.all(np.isfinite(out)) and np.any(np.asarray(out) > 0)


def _gram_gain(kernel):
    """For orthogonal W [n_in, n_out] with gain g: WᵀW = g²·I if n_in ≥ n_out, else WWᵀ."""
    w = np.asarray(kernel, np.float64)
    g = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    gain2 = g[0, 0]
    np.testing.assert_allclose(g, gain2 * np.eye(len(g)), atol=1e-5 * max(1.0, gain2))
    return math.sqrt(gain2)


def test_orthogonal_init_gains_and_zero_biases():
    net = nets.ActorCritic(3, True, hidden_sizes=(16, 16))
    q = nets.QNetwork(4, (16,), dueling=True)
    p, qp = jax.jit(lambda o: (net.init(KEY, o), q.init(KEY, o)))(obs_vec(2, d=16))
    p, qp = p["params"], qp["params"]
    square = np.asarray(p["actor_torso"]["Dense_1"]["kernel"])
    assert square.shape == (16, 16)
    np.testing.assert_allclose(square @ square.T, 2 * np.eye(16), atol=1e-5)
    assert _gram_gain(p["actor_torso"]["Dense_0"]["kernel"]) == pytest.approx(math.sqrt(2), 1e-5)
    assert _gram_gain(p["critic_torso"]["Dense_1"]["kernel"]) == pytest.approx(math.sqrt(2), 1e-5)
    assert _gram_gain(p["policy_head"]["kernel"]) == pytest.approx(0.01, 1e-4)
    assert _gram_gain(p["value_head"]["kernel"]) == pytest.approx(1.0, 1e-5)
    for leaf_path, leaf in jax.tree_util.tree_leaves_with_path((p, qp)):
        if "bias" in jax.tree_util.keystr(leaf_path):
            assert not np.any(np.asarray(leaf)), leaf_path
    assert _gram_gain(qp["value_head"]["kernel"]) == pytest.approx(1.0, 1e-5)
    assert _gram_gain(qp["advantage_head"]["kernel"]) == pytest.approx(1.0, 1e-5)


@jax.jit
def _actor_critic_outputs(o):
    out = {}
    for shared in (False, True):
        net = nets.ActorCritic(2, True, hidden_sizes=(8,), shared_torso=shared)
        params = net.init(KEY, o)
        dist, value = net.apply(params, o)
        out[f"shared={shared}"] = dict(
            has_critic=jnp.array("critic_torso" in params["params"]),
            logits=dist.logits,
            value=value,
            value_only=net.apply(params, o, method="value"),
            logits_only=net.apply(params, o, method="policy").logits,
        )
    net = nets.ActorCritic(2, False, hidden_sizes=(8,), log_std_init=-0.5)
    params = net.init(KEY, o)
    dist = net.apply(params, o, method="policy")
    a = dist.sample(seed=KEY)
    out["gauss"] = dict(
        log_std=params["params"]["log_std"],
        loc=dist.loc,
        scale=dist.scale_diag,
        a=a,
        log_prob=dist.log_prob(a),
    )
    net = nets.ActorCritic(2, False, hidden_sizes=(8,), state_dependent_std=True, log_std_init=-1)
    params = net.init(KEY, o)
    out["sds"] = dict(
        scale=net.apply(params, o, method="policy").scale_diag,
        has_param=jnp.array("log_std" in params["params"]),
        has_head=jnp.array("log_std_head" in params["params"]),
    )
    g = nets.GaussianActor(action_dim=2, hidden_sizes=(8,), log_std_init=0.3)
    out["actor_scale"] = g.apply(g.init(KEY, o), o).scale_diag
    return out


def test_actor_critic_methods_and_std_options():
    out = _actor_critic_outputs(obs_vec(5))
    for shared in (False, True):
        r = out[f"shared={shared}"]
        assert bool(r["has_critic"]) is not shared
        np.testing.assert_allclose(r["value_only"], r["value"], rtol=1e-6)
        np.testing.assert_allclose(r["logits_only"], r["logits"], rtol=1e-6)
    g = out["gauss"]
    np.testing.assert_allclose(g["log_std"], [-0.5, -0.5])
    np.testing.assert_allclose(g["scale"], np.full((5, 2), math.exp(-0.5)), rtol=1e-6)
    ref = stats.norm.logpdf(np.asarray(g["a"]), np.asarray(g["loc"]), math.exp(-0.5)).sum(-1)
    np.testing.assert_allclose(g["log_prob"], ref, rtol=1e-5)
    # State-dependent σ: a head with gain 0.01, so σ starts near exp(log_std_init).
    s = out["sds"]
    assert bool(s["has_head"]) and not bool(s["has_param"])
    np.testing.assert_allclose(s["scale"], math.exp(-1.0), rtol=0.1)
    assert not np.allclose(s["scale"], s["scale"][0])
    np.testing.assert_allclose(out["actor_scale"], math.exp(0.3), rtol=1e-6)


def test_dueling_identity():
    q = nets.QNetwork(4, (16,), dueling=True)

    @jax.jit
    def run(o):
        params = q.init(KEY, o)
        # Perturb so the identity is not satisfied trivially by zero biases.
        params = jax.tree.map(lambda x: x + 0.3 * jax.random.normal(KEY, x.shape), params)
        qs, inter = q.apply(params, o, mutable=["intermediates"])
        return qs, inter["intermediates"]["value"][0], inter["intermediates"]["advantage"][0]

    qs, value, adv = (np.asarray(x) for x in run(obs_vec(6)))
    np.testing.assert_allclose(qs.mean(-1), value, rtol=1e-5, atol=1e-6)
    centred = adv - adv.mean(-1, keepdims=True)
    np.testing.assert_allclose(qs, value[:, None] + centred, rtol=1e-5, atol=1e-6)
    assert np.abs(adv.mean(-1)).max() > 1e-3  # the raw advantages are not centred themselves


def _manual_squashed_log_prob(a, mean, std, low, high):
    """log π(a) by change of variables, in float64 NumPy: u = atanh((a − c)/s)."""
    a, mean, std = (np.asarray(x, np.float64) for x in (a, mean, std))
    c, s = (high + low) / 2, (high - low) / 2
    y = (a - c) / s
    u = np.arctanh(y)
    return (stats.norm.logpdf(u, mean, std) - np.log1p(-(y**2)) - np.log(s)).sum(-1)


@pytest.mark.parametrize("low,high", [(-1.0, 1.0), ((0.0, -2.0), (1.0, 2.0))])
def test_squashed_gaussian_log_prob_matches_change_of_variables(low, high):
    lo, hi = np.broadcast_to(np.asarray(low), (2,)), np.broadcast_to(np.asarray(high), (2,))
    actor = nets.SquashedGaussianActor(2, (8,), low=low, high=high)

    @jax.jit
    def run(o):
        params = actor.init(KEY, o)
        params = jax.tree.map(lambda x: x + 0.1 * jax.random.normal(KEY, x.shape), params)
        dist = actor.apply(params, o)
        a, log_p = dist.sample_and_log_prob(seed=jax.random.key(3))
        mean, std = dist.distribution.loc, dist.distribution.scale_diag
        s = nets.sample_squashed(jax.random.key(4), mean, jnp.log(std), lo, hi)
        return dict(
            a=a,
            log_p=log_p,
            log_p_inverse=dist.log_prob(a),
            mean=mean,
            std=std,
            s_action=s.action,
            s_log_p=s.log_prob,
            mode=nets.squashed_mode(dist),
        )

    r = {k: np.asarray(v) for k, v in run(obs_vec(64)).items()}
    assert np.all((r["a"] >= lo) & (r["a"] <= hi))
    c, half = (hi + lo) / 2, (hi - lo) / 2
    # Keep samples away from the bounds, where float32 atanh loses precision.
    ok = np.all(np.abs((r["a"] - c) / half) < 0.99, axis=-1)
    assert ok.sum() > 20
    manual = _manual_squashed_log_prob(r["a"], r["mean"], r["std"], lo, hi)
    np.testing.assert_allclose(r["log_p"][ok], manual[ok], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(r["log_p_inverse"][ok], manual[ok], rtol=1e-3, atol=1e-3)
    # sample_squashed: the same density, computed on the forward path.
    ok = np.all(np.abs((r["s_action"] - c) / half) < 0.99, axis=-1)
    manual = _manual_squashed_log_prob(r["s_action"], r["mean"], r["std"], lo, hi)
    np.testing.assert_allclose(r["s_log_p"][ok], manual[ok], rtol=1e-4, atol=1e-4)
    # Deterministic action c + s·tanh(μ); log σ inside [−5, 2].
    np.testing.assert_allclose(r["mode"], c + half * np.tanh(r["mean"]), rtol=1e-5, atol=1e-6)
    assert np.all(np.log(r["std"]) >= -5.0 - 1e-5) and np.all(np.log(r["std"]) <= 2.0 + 1e-5)


def test_sample_squashed_stable_far_out():
    """At |u| ≫ 1 the stable log(1 − tanh²u) stays finite (the naive form gives −inf)."""
    s = jax.jit(nets.sample_squashed)(KEY, jnp.array([[30.0, -30.0]]), jnp.full((1, 2), -5.0))
    assert np.all(np.isfinite(np.asarray(s.log_prob)))
    np.testing.assert_allclose(np.abs(s.action), 1.0)


def test_deterministic_actor_bounds():
    low, high = (-2.0, 0.0), (2.0, 0.5)
    actor = nets.DeterministicActor(2, (8,), low=low, high=high)

    @jax.jit
    def run(o):
        params = actor.init(KEY, o)
        params = jax.tree.map(lambda x: x + 2.0 * jax.random.normal(KEY, x.shape), params)
        a, inter = actor.apply(params, o, capture_intermediates=True)
        return a, inter["intermediates"]["Dense_0"]["__call__"][0]

    a, head = (np.asarray(x) for x in run(obs_vec(20)))
    lo, hi = np.asarray(low), np.asarray(high)
    np.testing.assert_allclose(a, lo + (np.tanh(head) + 1) * (hi - lo) / 2, rtol=1e-5, atol=1e-6)
    assert np.all((a >= lo) & (a <= hi))


def test_continuous_q_broadcast_and_twin_structure():
    q = nets.ContinuousQ((8,))
    twin = nets.TwinQ((8,))

    @jax.jit
    def run(o, a):
        p = q.init(KEY, o, a)
        tp = twin.init(KEY, o, a)
        out = twin.apply(tp, o, a)
        singles = [
            q.apply({"params": jax.tree.map(lambda x, i=i: x[i], tp["params"]["critics"])}, o, a)
            for i in range(2)
        ]
        return dict(
            broadcast=q.apply(p, o, a),
            explicit=q.apply(p, o, jnp.broadcast_to(a, (5, 2))),
            q1=out.q1,
            q2=out.q2,
            minimum=out.minimum(),
            single1=singles[0],
            single2=singles[1],
        )

    r = {k: np.asarray(v) for k, v in run(obs_vec(5, d=3), jnp.full((1, 2), 0.3)).items()}
    np.testing.assert_allclose(r["broadcast"], r["explicit"], rtol=1e-6)
    assert not np.allclose(r["q1"], r["q2"])  # independent initialisations
    np.testing.assert_allclose(r["single1"], r["q1"], rtol=1e-5)
    np.testing.assert_allclose(r["single2"], r["q2"], rtol=1e-5)
    np.testing.assert_allclose(r["minimum"], np.minimum(r["q1"], r["q2"]))


def _vmapped_and_single(net, keys, o):
    """Inits 3 parameter sets under vmap; returns the vmapped outputs and those of set 1
    applied alone, for actions sampled from the vmapped policies."""
    params = jax.vmap(net.init, in_axes=(0, None))(keys, o)
    dist, v = jax.vmap(net.apply, in_axes=(0, None))(params, o)
    dist1, v1 = net.apply(jax.tree.map(lambda x: x[1], params), o)
    a, lp = dist.sample_and_log_prob(seed=KEY)
    return v, v1, lp[1], dist1.log_prob(a[1])


def test_jit_and_vmap_over_param_sets():
    """vmap over 3 parameter sets equals applying each set alone; a distribution
    returned from jit(vmap(apply)) stays a valid pytree (passed on to another jit)."""
    o = obs_vec(4)
    keys = jax.random.split(KEY, 3)
    for net in (nets.ActorCritic(2, True, (8,)), nets.ActorCritic(2, False, (8,))):
        v, v1, lp, lp1 = jax.jit(_vmapped_and_single, static_argnums=0)(net, keys, o)
        assert v.shape == (3, 4)
        np.testing.assert_allclose(v[1], v1, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(lp, lp1, rtol=1e-5, atol=1e-6)
        assert not np.allclose(v[0], v[1])  # the seeds differ
    sac = nets.SquashedGaussianActor(2, (8,), low=(0.0, -2.0), high=(1.0, 2.0))
    params = jax.jit(jax.vmap(sac.init, in_axes=(0, None)))(keys, o)
    dists = jax.jit(jax.vmap(sac.apply, in_axes=(0, None)))(params, o)

    @jax.jit
    def check(dists, params):
        a, lp = dists.sample_and_log_prob(seed=KEY)
        return a, lp, sac.apply(jax.tree.map(lambda x: x[2], params), o).log_prob(a[2])

    a, lp, lp2 = check(dists, params)
    assert a.shape == (3, 4, 2) and lp.shape == (3, 4)
    np.testing.assert_allclose(lp[2], lp2, rtol=1e-3, atol=1e-3)


def test_no_jit_equals_jit():
    net = nets.ActorCritic(2, True, (8,))
    o = obs_vec(3)
    params = jax.jit(net.init)(KEY, o)
    d_jit, v_jit = jax.jit(net.apply)(params, o)
    d, v = net.apply(params, o)
    np.testing.assert_allclose(v, v_jit, rtol=1e-6)
    np.testing.assert_allclose(d.logits, d_jit.logits, rtol=1e-6)


def test_diag_gaussian_matches_closed_forms_and_survives_jit():
    loc = jnp.array([[0.0, 1.0], [-1.0, 0.5]])
    scale = jnp.array([[1.0, 0.5], [2.0, 0.1]])
    d = jax.jit(nets.DiagGaussian)(loc, scale)  # returned from jit: must stay usable

    @jax.jit
    def run(d):
        x = d.sample(seed=KEY)
        q = nets.DiagGaussian(d.loc + 1.0, 2 * d.scale_diag)
        mvn = distrax.MultivariateNormalDiag(d.loc, d.scale_diag)
        return x, d.log_prob(x), d.entropy(), d.kl_divergence(q), mvn.log_prob(x)

    x, log_p, ent, kl, log_p_mvn = (np.asarray(v, np.float64) for v in run(d))
    m1, s1 = np.asarray(loc, np.float64), np.asarray(scale, np.float64)
    np.testing.assert_allclose(log_p, stats.norm.logpdf(x, m1, s1).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(log_p, log_p_mvn, rtol=1e-6)
    np.testing.assert_allclose(ent, stats.norm.entropy(0, s1).sum(-1), rtol=1e-5)
    m2, s2 = m1 + 1.0, 2 * s1
    ref_kl = (np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5).sum(-1)
    np.testing.assert_allclose(kl, ref_kl, rtol=1e-5)
    np.testing.assert_array_equal(d.loc, loc)
    np.testing.assert_array_equal(d.scale_diag, scale)


def test_positional_arguments_follow_documented_order():
    assert nets.CategoricalActor(4, (8,), "relu").num_actions == 4
    g = nets.GaussianActor(2, (8,), "relu", True, -1.0)
    assert (g.action_dim, g.hidden_sizes, g.state_dependent_std, g.log_std_init) == (
        2,
        (8,),
        True,
        -1.0,
    )
    assert nets.ValueCritic((8,), "relu", "cnn").torso == "cnn"
    assert nets.QNetwork(3, (8,), "tanh", True).dueling
    assert nets.ActorCritic(2, False, (8,), "relu", "mlp", True, True).state_dependent_std
    assert nets.DeterministicActor(2, (8,), -2.0, 2.0).high == 2.0
    assert nets.SquashedGaussianActor(2, (8,), -4.0, 1.0).log_std_min == -4.0


def test_argument_errors():
    with pytest.raises(ValueError, match="activation must be one of .*'sigmoid'"):
        nets.MLP((4,), activation="sigmoid")
    with pytest.raises(ValueError, match="torso must be one of .*'rnn'"):
        nets.ActorCritic(2, True, torso="rnn")
    with pytest.raises(ValueError, match="action_dim"):
        nets.ActorCritic(0, True)
    with pytest.raises(ValueError, match="torso"):
        nets.QNetwork(2, torso="transformer")
    with pytest.raises(ValueError, match="activation"):
        nets.CategoricalActor(2, activation="nope")
    with pytest.raises(ValueError, match="torso"):
        nets.ValueCritic(torso="nope")
    with pytest.raises(ValueError, match="log_std_min < log_std_max"):
        nets.SquashedGaussianActor(1, log_std_min=1.0, log_std_max=0.0)


def test_categorical_head_starts_near_uniform():
    actor = nets.CategoricalActor(num_actions=4, hidden_sizes=(16,))
    probs = jax.jit(lambda o: actor.apply(actor.init(KEY, o), o).probs)(obs_vec(10))
    np.testing.assert_allclose(probs, 0.25, atol=0.02)


def _qr_operand_ranks(fn, *args) -> list[int]:
    """The rank of every QR decomposition's result in the jaxpr of ``fn(*args)``."""
    text = str(jax.make_jaxpr(fn)(*args))
    return [
        len(m.split(",")) for m in re.findall(r"f32\[([\d,]+)\] \w+:f32\[[\d,]+\] = qr\[", text)
    ]


def test_orthogonal_equals_jax_and_vmaps_without_a_batched_qr():
    shapes = [(4, 64), (64, 64), (64, 2), (3, 3, 4, 16)]
    keys = jax.random.split(jax.random.key(3), 5)

    def both(key):
        return [
            (nets.orthogonal(1.4)(key, s), jax.nn.initializers.orthogonal(1.4)(key, s))
            for s in shapes
        ]

    for mine, theirs in jax.jit(both)(keys[0]):
        np.testing.assert_array_equal(mine, theirs)  # the same numbers, bit for bit
    batched = jax.jit(jax.vmap(both))(keys)
    for (mine, theirs), s in zip(batched, shapes, strict=True):
        assert mine.shape == (5, *s)
        np.testing.assert_array_equal(mine, theirs)  # seed by seed, too
    # The vmapped initialiser decomposes one matrix at a time; jax's would batch the QR
    # (batched LAPACK, which can hang jaxlib's 2-thread CPU pool).
    init = nets.MLP((8, 8)).init
    x = jnp.zeros((3,))
    assert set(_qr_operand_ranks(jax.vmap(lambda k: init(k, x)), keys)) == {2}
    assert 3 in _qr_operand_ranks(
        jax.vmap(lambda k: jax.nn.initializers.orthogonal()(k, (8, 8))), keys
    )


@pytest.mark.parametrize("algo", ["ppo", "a2c", "reinforce", "trpo", "dqn", "ddpg", "td3", "sac"])
def test_vmapped_train_of_every_agent_has_no_batched_qr(algo):
    # The README's jax.jit(jax.vmap(train))(keys): init runs inside the vmap.
    from jaxrl.agents import get_algorithm

    module = get_algorithm(algo)
    train = module.make_train(module.Config())
    keys = jax.random.split(jax.random.key(0), 3)
    ranks = _qr_operand_ranks(jax.vmap(train), keys)
    assert ranks and set(ranks) == {2}, ranks
