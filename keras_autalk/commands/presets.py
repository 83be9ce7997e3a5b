"""`autalk presets`: the named models, architectures and pretrained weights, in a table."""

from keras_autalk.commands.common import EXIT_OK

COLUMNS = ("name", "kind", "parameters", "size", "licence", "description")


def add_parser(subparsers):
    """Add `autalk presets` and its options to `subparsers`."""
    parser = subparsers.add_parser(
        "presets",
        help="list the models you can name: architectures and pretrained weights",
        description="List every preset: the architectures (a config to train, no weights) and "
        "the pretrained models (weights, usable by generate --model NAME). Parameters count "
        "the generator's weights, the ones that make the video.",
    )
    parser.add_argument(
        "--kind", choices=("architecture", "pretrained"), default=None, help="list only this kind"
    )
    parser.set_defaults(handler=run)


def format_count(count):
    """3084489 -> "3.1 M"; None -> "-"."""
    if count is None:
        return "-"
    return f"{count / 1e6:.1f} M" if count >= 100_000 else f"{count:,}"


def format_size(size_bytes):
    """12683275 -> "12.7 MB"; None -> "-"."""
    if size_bytes is None:
        return "-"
    return f"{size_bytes / 1e6:.1f} MB" if size_bytes >= 100_000 else f"{size_bytes:,} B"


def format_table(presets):
    """The presets as a plain-text table, one row each, the description last."""
    rows = [COLUMNS] + [
        (
            preset.name,
            preset.kind,
            format_count(preset.parameters),
            format_size(preset.size_bytes),
            preset.license,
            preset.description,
        )
        for preset in presets
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS) - 1)]
    right = {2, 3}  # numbers line up on the right
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if column in right else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells + [row[-1]]).rstrip())
    return "\n".join(lines)


def run(args):
    """Run `autalk presets`; return the exit status."""
    from keras_autalk.presets import registry

    print(format_table(registry.list_presets(args.kind)))
    return EXIT_OK
