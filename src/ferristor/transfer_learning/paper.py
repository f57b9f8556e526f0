"""What the paper reports for Fig. 6 (digest §6 [P]): only gaps and transfer counts — the digest
gives no per-dataset accuracies, so none are shown. The source tasks (CIFAR-100 → CIFAR-10,
ImageNet → Pets/Flowers/Birds/Cars) and "FP ≈ 4-bit offline" come from issue 9's account of the
paper, not from the digest, and are tagged so."""
FIG6_SOURCE = "digest §6, Fig. 6 [P]"
FIG6_GAP_CIFAR10_PP = 1.2  # HM-online below FP on CIFAR-10 (digest §6; from CIFAR-100: issue 9)
FIG6_GAP_IMAGENET_PP = (1.8, 7.3)  # HM-online below FP on ImageNet-derived tasks (digest §6; four fine-grained sets: issue 9)
FIG6_TRANSFERS = (2740, 4550)
FIG6_P, FIG6_K, FIG6_LR = 1.0, 512, 0.1  # digest §6
FIG6_TEXT = ("paper (digest §6): HM-online 1.2 pp below FP on CIFAR-10, 1.8–7.3 pp on ImageNet-derived tasks; "
             "2,740–4,550 transfers")
