"""Tools that maintain the repository rather than run models: publishing a run into registry/
(:mod:`.publish`) and the generated tables of docs/models.md (:mod:`.models_doc`) and
docs/configs.md (:mod:`.parts_doc`). Nothing in the runtime layers imports them; the CLI's
``publish`` commands do."""
